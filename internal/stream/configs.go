package stream

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// ConfigType is a config value's type, as Kafka's DescribeConfigs reports it.
type ConfigType int8

// Values match Kafka's ConfigEntry types so the front end can pass them through.
const (
	ConfigTypeString ConfigType = 2
	ConfigTypeInt    ConfigType = 3
	ConfigTypeLong   ConfigType = 5
	ConfigTypeList   ConfigType = 7
)

// ConfigSource says where an effective value comes from; values match Kafka's.
type ConfigSource int8

const (
	SourceTopic         ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceBrokerDynamic ConfigSource = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	SourceDefault       ConfigSource = 5 // DEFAULT_CONFIG
)

// ErrInvalidConfig is returned for unknown config names and bad values.
var ErrInvalidConfig = errors.New("invalid config")

// configDef is one supported topic config and its broker-wide default.
type configDef struct {
	Name       string // topic-level name, e.g. "retention.ms"
	BrokerName string // broker-level default's name, e.g. "log.retention.ms"
	Default    string
	Type       ConfigType
	Doc        string
	validate   func(string) error
}

func longAtLeast(min int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		if v < min {
			return fmt.Errorf("%d is below the minimum %d", v, min)
		}
		return nil
	}
}

func intAtLeast(min int64) func(string) error {
	return func(s string) error {
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a 32-bit number", s)
		}
		if v < min {
			return fmt.Errorf("%d is below the minimum %d", v, min)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(s string) error {
		for _, a := range allowed {
			if s == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not supported (allowed: %v)", s, allowed)
	}
}

// configDefs is every topic config yard understands, sorted by name. Defaults are Kafka's.
var configDefs = []configDef{
	{"cleanup.policy", "log.cleanup.policy", "delete", ConfigTypeList,
		"only delete: log compaction is not implemented", oneOf("delete")},
	{"max.message.bytes", "message.max.bytes", "1048588", ConfigTypeInt,
		"largest record batch accepted, in bytes", intAtLeast(0)},
	{"message.timestamp.type", "log.message.timestamp.type", "CreateTime", ConfigTypeString,
		"CreateTime keeps the producer's timestamps, LogAppendTime stamps the append time", oneOf("CreateTime", "LogAppendTime")},
	{"retention.bytes", "log.retention.bytes", "-1", ConfigTypeLong,
		"per-partition size above which old segments are deleted; -1 unlimited", longAtLeast(-1)},
	{"retention.ms", "log.retention.ms", "604800000", ConfigTypeLong,
		"age after which old segments are deleted; -1 unlimited", longAtLeast(-1)},
	{"segment.bytes", "log.segment.bytes", "1073741824", ConfigTypeInt,
		"segment file size at which a new segment is rolled", intAtLeast(14)},
	{"segment.ms", "log.roll.ms", "604800000", ConfigTypeLong,
		"segment age at which a new segment is rolled", longAtLeast(1)},
}

func findDef(name string) (*configDef, bool) {
	for i := range configDefs {
		if configDefs[i].Name == name {
			return &configDefs[i], true
		}
	}
	return nil, false
}

func findBrokerDef(name string) (*configDef, bool) {
	for i := range configDefs {
		if configDefs[i].BrokerName == name {
			return &configDefs[i], true
		}
	}
	return nil, false
}

// ValidateTopicConfigs checks names and values of topic-level configs.
func ValidateTopicConfigs(cfgs map[string]string) error {
	for k, v := range cfgs {
		d, ok := findDef(k)
		if !ok {
			return fmt.Errorf("%w: unknown topic config name %q", ErrInvalidConfig, k)
		}
		if err := d.validate(v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, k, err)
		}
	}
	return nil
}

// ValidateBrokerConfigs checks names and values of broker-level defaults.
func ValidateBrokerConfigs(cfgs map[string]string) error {
	for k, v := range cfgs {
		d, ok := findBrokerDef(k)
		if !ok {
			return fmt.Errorf("%w: unknown or read-only broker config name %q", ErrInvalidConfig, k)
		}
		if err := d.validate(v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, k, err)
		}
	}
	return nil
}

// ConfigEntry is one effective config value.
type ConfigEntry struct {
	Name   string
	Value  string
	Source ConfigSource
	Type   ConfigType
	Doc    string
	// Synonyms, most specific first (as Kafka lists them): topic value, broker dynamic
	// default, built-in default.
	Synonyms []ConfigSynonym
}

// ConfigSynonym is one place a value could come from.
type ConfigSynonym struct {
	Name   string
	Value  string
	Source ConfigSource
}

// effectiveTopicConfigs resolves topic value > dynamic broker default > built-in default.
func effectiveTopicConfigs(topic, broker map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(configDefs))
	for _, d := range configDefs {
		e := ConfigEntry{Name: d.Name, Type: d.Type, Doc: d.Doc, Value: d.Default, Source: SourceDefault}
		var syn []ConfigSynonym
		if v, ok := topic[d.Name]; ok {
			syn = append(syn, ConfigSynonym{d.Name, v, SourceTopic})
		}
		if v, ok := broker[d.BrokerName]; ok {
			syn = append(syn, ConfigSynonym{d.BrokerName, v, SourceBrokerDynamic})
		}
		syn = append(syn, ConfigSynonym{d.BrokerName, d.Default, SourceDefault})
		e.Value, e.Source, e.Synonyms = syn[0].Value, syn[0].Source, syn
		out = append(out, e)
	}
	return out
}

// effectiveBrokerConfigs lists the broker-level defaults.
func effectiveBrokerConfigs(broker map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(configDefs))
	for _, d := range configDefs {
		e := ConfigEntry{Name: d.BrokerName, Type: d.Type, Doc: d.Doc, Value: d.Default, Source: SourceDefault}
		if v, ok := broker[d.BrokerName]; ok {
			e.Value, e.Source = v, SourceBrokerDynamic
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TopicConfig is a topic's effective configuration, parsed.
type TopicConfig struct {
	RetentionMs      int64
	RetentionBytes   int64
	SegmentBytes     int64
	SegmentMs        int64
	MaxMessageBytes  int
	LogAppendTime    bool
	CleanupPolicyDel bool
}

// parseTopicConfig turns validated effective entries into TopicConfig.
func parseTopicConfig(entries []ConfigEntry) TopicConfig {
	var c TopicConfig
	for _, e := range entries {
		n, _ := strconv.ParseInt(e.Value, 10, 64)
		switch e.Name {
		case "retention.ms":
			c.RetentionMs = n
		case "retention.bytes":
			c.RetentionBytes = n
		case "segment.bytes":
			c.SegmentBytes = n
		case "segment.ms":
			c.SegmentMs = n
		case "max.message.bytes":
			c.MaxMessageBytes = int(n)
		case "message.timestamp.type":
			c.LogAppendTime = e.Value == "LogAppendTime"
		case "cleanup.policy":
			c.CleanupPolicyDel = e.Value == "delete"
		}
	}
	return c
}

// logOptions maps a topic's configuration and the broker's storage settings onto the engine.
func (c TopicConfig) logOptions(m *Manager) log.Options {
	return log.Options{
		SegmentBytesMax: c.SegmentBytes,
		SegmentMaxAge:   time.Duration(c.SegmentMs) * time.Millisecond,
		SyncPolicy:      m.cfg.SyncPolicy,
		SyncInterval:    m.cfg.SyncInterval,
		RetentionMs:     c.RetentionMs,
		RetentionBytes:  c.RetentionBytes,
		Now:             m.cfg.Now,
		Logger:          m.log,
		FS:              m.cfg.FS,
		FileCache:       m.cfg.FileCache,
	}
}
