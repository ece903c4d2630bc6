package stream

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// ConfigType is a config value's type, as Kafka's DescribeConfigs reports it.
type ConfigType int8

// Values match Kafka's ConfigEntry types so the front end can pass them through.
const (
	ConfigTypeBoolean ConfigType = 1
	ConfigTypeString  ConfigType = 2
	ConfigTypeInt     ConfigType = 3
	ConfigTypeLong    ConfigType = 5
	ConfigTypeDouble  ConfigType = 6
	ConfigTypeList    ConfigType = 7
)

// ConfigSource says where an effective value comes from; values match Kafka's.
type ConfigSource int8

const (
	SourceTopic         ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceBrokerDynamic ConfigSource = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	SourceDefault       ConfigSource = 5 // DEFAULT_CONFIG
	SourceGroup         ConfigSource = 8 // GROUP_CONFIG
)

// ErrInvalidConfig is returned for unknown config names and bad values.
var ErrInvalidConfig = errors.New("invalid config")

// configDef is one config Kafka defines, its broker-wide default and how Kafka validates it.
type configDef struct {
	Name string // topic-level (or group-level) name, e.g. "retention.ms"
	// BrokerName is the broker-level synonym holding the broker-wide default, e.g.
	// "log.retention.ms"; "" when Kafka has none (the value is then topic-level only).
	BrokerName string
	Default    string
	Type       ConfigType
	Doc        string
	// validate checks a value as Kafka's ConfigDef parses and validates it (surrounding
	// spaces trimmed) and returns its canonical form, the one stored and reported.
	validate func(string) (string, error)
}

// ignored is appended to the documentation of configs yard stores and reports but does not
// act on (README.md lists them).
const ignored = " (stored and reported; yard does not act on it)"

// configDefs is every topic config Kafka defines (its LogConfig), sorted by name, with Kafka's
// defaults and validation. Those yard acts on: cleanup.policy, delete.retention.ms,
// max.compaction.lag.ms, max.message.bytes, message.timestamp.type, min.cleanable.dirty.ratio,
// min.compaction.lag.ms, retention.bytes, retention.ms, segment.bytes, segment.ms.
var configDefs = []configDef{
	{"cleanup.policy", "log.cleanup.policy", "delete", ConfigTypeList,
		"delete: old segments are deleted by retention.ms and retention.bytes; compact: the cleaner keeps the latest record per key (records need a key); compact,delete: both",
		cleanupPolicy},
	{"compression.gzip.level", "compression.gzip.level", "-1", ConfigTypeInt,
		"gzip level for compression.type=gzip" + ignored, gzipLevel},
	{"compression.lz4.level", "compression.lz4.level", "9", ConfigTypeInt,
		"lz4 level for compression.type=lz4" + ignored, intBetween(1, 17)},
	{"compression.type", "compression.type", "producer", ConfigTypeString,
		"final compression of the topic's batches; yard stores batches as the producer sent them, as with producer" + ignored,
		oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")},
	{"compression.zstd.level", "compression.zstd.level", "3", ConfigTypeInt,
		"zstd level for compression.type=zstd" + ignored, intBetween(-131072, 22)},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", ConfigTypeLong,
		"how long delete tombstones are kept on compacted topics", longAtLeast(0)},
	{"file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", ConfigTypeLong,
		"delay before a deleted segment's file is removed; yard removes it at once" + ignored, longAtLeast(0)},
	{"flush.messages", "log.flush.interval.messages", "9223372036854775807", ConfigTypeLong,
		"messages between forced fsyncs; yard fsyncs per --sync-policy" + ignored, longAtLeast(1)},
	{"flush.ms", "log.flush.interval.ms", "9223372036854775807", ConfigTypeLong,
		"time between forced fsyncs; yard fsyncs per --sync-policy" + ignored, longAtLeast(0)},
	{"follower.replication.throttled.replicas", "", "", ConfigTypeList,
		"replicas whose replication is throttled on the follower side; one node has no replication" + ignored, throttledReplicas},
	{"index.interval.bytes", "log.index.interval.bytes", "4096", ConfigTypeInt,
		"bytes between offset index entries" + ignored, intAtLeast(0)},
	{"leader.replication.throttled.replicas", "", "", ConfigTypeList,
		"replicas whose replication is throttled on the leader side; one node has no replication" + ignored, throttledReplicas},
	{"local.retention.bytes", "log.local.retention.bytes", "-2", ConfigTypeLong,
		"local retention under tiered storage (-2: retention.bytes)" + ignored, longAtLeast(-2)},
	{"local.retention.ms", "log.local.retention.ms", "-2", ConfigTypeLong,
		"local retention under tiered storage (-2: retention.ms)" + ignored, longAtLeast(-2)},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", ConfigTypeLong,
		"longest time a record stays uncompacted", longAtLeast(1)},
	{"max.message.bytes", "message.max.bytes", "1048588", ConfigTypeInt,
		"largest record batch accepted, in bytes", intAtLeast(0)},
	{"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms", "3600000", ConfigTypeLong,
		"how far in the future a CreateTime timestamp may be" + ignored, longAtLeast(0)},
	{"message.timestamp.before.max.ms", "log.message.timestamp.before.max.ms", "9223372036854775807", ConfigTypeLong,
		"how far in the past a CreateTime timestamp may be" + ignored, longAtLeast(0)},
	{"message.timestamp.type", "log.message.timestamp.type", "CreateTime", ConfigTypeString,
		"CreateTime keeps the producer's timestamps, LogAppendTime stamps the append time", oneOf("CreateTime", "LogAppendTime")},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", ConfigTypeDouble,
		"dirty ratio above which a compacted log is cleaned", doubleBetween(0, 1)},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", ConfigTypeLong,
		"shortest time a record stays uncompacted", longAtLeast(0)},
	{"min.insync.replicas", "min.insync.replicas", "1", ConfigTypeInt,
		"replicas that must be in sync for an acks=all write to a replicated partition (a cluster node's); one node has one", intAtLeast(1)},
	{"preallocate", "log.preallocate", "false", ConfigTypeBoolean,
		"preallocate segment files" + ignored, boolean},
	{"remote.log.copy.disable", "", "false", ConfigTypeBoolean,
		"stop copying to tiered storage" + ignored, boolean},
	{"remote.log.delete.on.disable", "", "false", ConfigTypeBoolean,
		"delete tiered data when tiered storage is disabled" + ignored, boolean},
	{"remote.storage.enable", "", "false", ConfigTypeBoolean,
		"tiered storage; disabled in this broker, so only false is accepted", remoteStorage},
	{"retention.bytes", "log.retention.bytes", "-1", ConfigTypeLong,
		"per-partition size above which old segments are deleted; negative: unlimited", longAtLeast(math.MinInt64)},
	{"retention.ms", "log.retention.ms", "604800000", ConfigTypeLong,
		"age after which old segments are deleted; -1 unlimited", longAtLeast(-1)},
	{"segment.bytes", "log.segment.bytes", "1073741824", ConfigTypeInt,
		"segment file size at which a new segment is rolled", intAtLeast(minSegmentBytes)},
	{"segment.index.bytes", "log.index.size.max.bytes", "10485760", ConfigTypeInt,
		"size of a segment's offset index" + ignored, intAtLeast(4)},
	{"segment.jitter.ms", "log.roll.jitter.ms", "0", ConfigTypeLong,
		"random jitter subtracted from segment.ms" + ignored, longAtLeast(0)},
	{"segment.ms", "log.roll.ms", "604800000", ConfigTypeLong,
		"segment age at which a new segment is rolled", longAtLeast(1)},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", "false", ConfigTypeBoolean,
		"elect an out-of-sync replica; one node has no other" + ignored, boolean},
}

// minSegmentBytes is the smallest segment.bytes accepted: Kafka 3's minimum (one empty
// batch), not Kafka 4's 1 MiB, because AMQP stream queues map
// x-stream-max-segment-size-bytes (any positive size in RabbitMQ) onto it.
const minSegmentBytes = 14

func parseLong(s string, bits int) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	if err != nil {
		if bits == 32 {
			return 0, fmt.Errorf("%q is not a 32-bit integer", s)
		}
		return 0, fmt.Errorf("%q is not a 64-bit integer", s)
	}
	return v, nil
}

func rangeCheck(v, min, max int64) error {
	if v < min {
		return fmt.Errorf("%d is below the minimum %d", v, min)
	}
	if v > max {
		return fmt.Errorf("%d is above the maximum %d", v, max)
	}
	return nil
}

func longAtLeast(min int64) func(string) (string, error) {
	return func(s string) (string, error) {
		v, err := parseLong(s, 64)
		if err == nil {
			err = rangeCheck(v, min, math.MaxInt64)
		}
		return strconv.FormatInt(v, 10), err
	}
}

func intBetween(min, max int64) func(string) (string, error) {
	return func(s string) (string, error) {
		v, err := parseLong(s, 32)
		if err == nil {
			err = rangeCheck(v, min, max)
		}
		return strconv.FormatInt(v, 10), err
	}
}

func intAtLeast(min int64) func(string) (string, error) { return intBetween(min, math.MaxInt32) }

// gzipLevel is Kafka's: 1 to 9, or -1 (zlib's default).
func gzipLevel(s string) (string, error) {
	v, err := parseLong(s, 32)
	if err == nil && v != -1 {
		if rangeCheck(v, 1, 9) != nil {
			err = fmt.Errorf("%d: must be between 1 and 9 or equal to -1", v)
		}
	}
	return strconv.FormatInt(v, 10), err
}

func doubleBetween(min, max float64) func(string) (string, error) {
	return func(s string) (string, error) {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) {
			return "", fmt.Errorf("%q is not a number", s)
		}
		if v < min || v > max {
			return "", fmt.Errorf("%v is not between %v and %v", v, min, max)
		}
		c := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.ContainsAny(c, ".eE") {
			c += ".0" // as Java's Double.toString, which Kafka reports
		}
		return c, nil
	}
}

// boolean parses as Kafka does: true or false in any case.
func boolean(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return "true", nil
	case "false":
		return "false", nil
	}
	return "", fmt.Errorf("%q is not true or false", s)
}

func oneOf(allowed ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		t := strings.TrimSpace(s)
		for _, a := range allowed {
			if t == a {
				return t, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %v", s, allowed)
	}
}

// listItems splits a LIST value as Kafka does: comma-separated, each item trimmed; "" is the
// empty list.
func listItems(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	items := strings.Split(s, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

// cleanupPolicy accepts what Kafka (4.4) accepts: a list of compact and delete, each at most
// once, stored as given (trimmed), or the empty list: neither retention deletes nor the
// cleaner compacts (confluent-kafka-python's tests SUBTRACT delete down to it).
func cleanupPolicy(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	items := listItems(s)
	seen := map[string]bool{}
	for _, it := range items {
		if it != "compact" && it != "delete" {
			return "", fmt.Errorf("%q is not a list of compact and delete", s)
		}
		if seen[it] {
			return "", fmt.Errorf("%q names %s twice", s, it)
		}
		seen[it] = true
	}
	return strings.Join(items, ","), nil
}

// throttledReplicas is Kafka's ThrottledReplicaListValidator: "*" or partition:broker pairs.
func throttledReplicas(s string) (string, error) {
	items := listItems(s)
	if len(items) == 1 && items[0] == "*" {
		return "*", nil
	}
	for _, it := range items {
		p, b, ok := strings.Cut(it, ":")
		if it == "" {
			continue
		}
		if !ok || !allDigits(p) || !allDigits(b) {
			return "", fmt.Errorf("%q: must be the literal '*' or a list of replicas in the format [partitionId]:[brokerId],[partitionId]:[brokerId],...", s)
		}
	}
	return strings.Join(items, ","), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// remoteStorage refuses true as Kafka does when tiered storage is disabled in the broker.
func remoteStorage(s string) (string, error) {
	v, err := boolean(s)
	if err == nil && v == "true" {
		err = errors.New("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage")
	}
	return v, err
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
	if name == "" {
		return nil, false
	}
	for i := range configDefs {
		if configDefs[i].BrokerName == name {
			return &configDefs[i], true
		}
	}
	return nil, false
}

// ValidateTopicConfigs checks names and values of topic-level configs.
func ValidateTopicConfigs(cfgs map[string]string) error {
	_, err := normalizeTopicConfigs(cfgs)
	return err
}

// normalizeTopicConfigs checks names and values of topic-level configs and returns them in
// canonical form (as Kafka stores and reports them: "true" for " TRUE", "5" for " 5").
func normalizeTopicConfigs(cfgs map[string]string) (map[string]string, error) {
	return normalizeConfigs(cfgs, "topic", findDef)
}

// ValidateBrokerConfigs checks names and values of broker-level defaults.
func ValidateBrokerConfigs(cfgs map[string]string) error {
	_, err := normalizeBrokerConfigs(cfgs)
	return err
}

func normalizeBrokerConfigs(cfgs map[string]string) (map[string]string, error) {
	return normalizeConfigs(cfgs, "broker (or read-only)", findBrokerDef)
}

func normalizeConfigs(cfgs map[string]string, kind string, find func(string) (*configDef, bool)) (map[string]string, error) {
	if cfgs == nil {
		return nil, nil
	}
	out := make(map[string]string, len(cfgs))
	for _, k := range sortedKeys(cfgs) { // the same error for the same request
		d, ok := find(k)
		if !ok {
			return nil, fmt.Errorf("%w: unknown %s config name %q", ErrInvalidConfig, kind, k)
		}
		v, err := d.validate(cfgs[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, k, err)
		}
		out[k] = v
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkTopicConfigs applies Kafka's checks across configs to a topic's effective values
// (topic over broker default over built-in default).
func checkTopicConfigs(topic, broker map[string]string) error {
	eff := map[string]string{}
	for _, e := range effectiveTopicConfigs(topic, broker) {
		eff[e.Name] = e.Value
	}
	minLag, _ := strconv.ParseInt(eff["min.compaction.lag.ms"], 10, 64)
	maxLag, _ := strconv.ParseInt(eff["max.compaction.lag.ms"], 10, 64)
	if minLag > maxLag {
		return fmt.Errorf("%w: conflicting topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", ErrInvalidConfig, minLag, maxLag)
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
		if d.BrokerName != "" { // as Kafka: a topic-only config has no broker synonym
			if v, ok := broker[d.BrokerName]; ok {
				syn = append(syn, ConfigSynonym{d.BrokerName, v, SourceBrokerDynamic})
			}
			syn = append(syn, ConfigSynonym{d.BrokerName, d.Default, SourceDefault})
		}
		if len(syn) > 0 {
			e.Value, e.Source = syn[0].Value, syn[0].Source
		}
		e.Synonyms = syn
		out = append(out, e)
	}
	return out
}

// effectiveBrokerConfigs lists the broker-level defaults.
func effectiveBrokerConfigs(broker map[string]string) []ConfigEntry {
	out := make([]ConfigEntry, 0, len(configDefs))
	for _, d := range configDefs {
		if d.BrokerName == "" {
			continue
		}
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
	RetentionMs     int64
	RetentionBytes  int64
	SegmentBytes    int64
	SegmentMs       int64
	MaxMessageBytes int
	LogAppendTime   bool
	// MinInsyncReplicas refuses acks=all writes to a replicated partition whose leader sees
	// fewer replicas in sync (NOT_ENOUGH_REPLICAS).
	MinInsyncReplicas int
	CleanupPolicyDel  bool // cleanup.policy holds delete: retention deletes old segments
	Compact           bool // cleanup.policy holds compact: the cleaner compacts the partitions
	// The cleaner's settings (see internal/log Options).
	DeleteRetentionMs      int64
	MinCleanableDirtyRatio float64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
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
		case "min.insync.replicas":
			c.MinInsyncReplicas = int(n)
		case "message.timestamp.type":
			c.LogAppendTime = e.Value == "LogAppendTime"
		case "cleanup.policy":
			items := listItems(e.Value)
			c.CleanupPolicyDel = slices.Contains(items, "delete")
			c.Compact = slices.Contains(items, "compact")
		case "delete.retention.ms":
			c.DeleteRetentionMs = n
		case "min.cleanable.dirty.ratio":
			c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(e.Value, 64)
		case "min.compaction.lag.ms":
			c.MinCompactionLagMs = n
		case "max.compaction.lag.ms":
			c.MaxCompactionLagMs = n
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
		Compact:         c.Compact,
		NoDelete:        !c.CleanupPolicyDel,
		// 0 means the engine's default there: ask for what the topic says.
		DeleteRetentionMs:      nonZero(c.DeleteRetentionMs, -1),
		MinCleanableDirtyRatio: nonZeroRatio(c.MinCleanableDirtyRatio),
		MinCompactionLagMs:     c.MinCompactionLagMs,
		MaxCompactionLagMs:     c.MaxCompactionLagMs,
		Now:                    m.cfg.Now,
		Logger:                 m.log,
		FS:                     m.cfg.FS,
		FileCache:              m.cfg.FileCache,
		SyncObserver:           m.cfg.SyncObserver,
	}
}

// nonZero maps 0 (which the engine reads as "its default") to zero, a value with the same
// meaning for the engine.
func nonZero(v, zero int64) int64 {
	if v == 0 {
		return zero
	}
	return v
}

// nonZeroRatio maps a ratio of 0 (clean as soon as anything is dirty) to the engine's negative.
func nonZeroRatio(r float64) float64 {
	if r == 0 {
		return -1
	}
	return r
}
