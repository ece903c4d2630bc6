package kafka

// Every topic config Kafka 4.x defines, validated as Kafka validates it and reported with its
// defaults, sources and broker synonyms; GROUP config resources.

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kafkaTopicConfigs is Kafka 4.x's topic configs (LogConfig): default, type and broker
// synonym ("" for topic-only configs), written out from Kafka's sources.
var kafkaTopicConfigs = map[string]struct {
	def, broker string
	typ         kmsg.ConfigType
}{
	"cleanup.policy":                          {"delete", "log.cleanup.policy", kmsg.ConfigTypeList},
	"compression.gzip.level":                  {"-1", "compression.gzip.level", kmsg.ConfigTypeInt},
	"compression.lz4.level":                   {"9", "compression.lz4.level", kmsg.ConfigTypeInt},
	"compression.type":                        {"producer", "compression.type", kmsg.ConfigTypeString},
	"compression.zstd.level":                  {"3", "compression.zstd.level", kmsg.ConfigTypeInt},
	"delete.retention.ms":                     {"86400000", "log.cleaner.delete.retention.ms", kmsg.ConfigTypeLong},
	"file.delete.delay.ms":                    {"60000", "log.segment.delete.delay.ms", kmsg.ConfigTypeLong},
	"flush.messages":                          {"9223372036854775807", "log.flush.interval.messages", kmsg.ConfigTypeLong},
	"flush.ms":                                {"9223372036854775807", "log.flush.interval.ms", kmsg.ConfigTypeLong},
	"follower.replication.throttled.replicas": {"", "", kmsg.ConfigTypeList},
	"index.interval.bytes":                    {"4096", "log.index.interval.bytes", kmsg.ConfigTypeInt},
	"leader.replication.throttled.replicas":   {"", "", kmsg.ConfigTypeList},
	"local.retention.bytes":                   {"-2", "log.local.retention.bytes", kmsg.ConfigTypeLong},
	"local.retention.ms":                      {"-2", "log.local.retention.ms", kmsg.ConfigTypeLong},
	"max.compaction.lag.ms":                   {"9223372036854775807", "log.cleaner.max.compaction.lag.ms", kmsg.ConfigTypeLong},
	"max.message.bytes":                       {"1048588", "message.max.bytes", kmsg.ConfigTypeInt},
	"message.timestamp.after.max.ms":          {"3600000", "log.message.timestamp.after.max.ms", kmsg.ConfigTypeLong},
	"message.timestamp.before.max.ms":         {"9223372036854775807", "log.message.timestamp.before.max.ms", kmsg.ConfigTypeLong},
	"message.timestamp.type":                  {"CreateTime", "log.message.timestamp.type", kmsg.ConfigTypeString},
	"min.cleanable.dirty.ratio":               {"0.5", "log.cleaner.min.cleanable.ratio", kmsg.ConfigTypeDouble},
	"min.compaction.lag.ms":                   {"0", "log.cleaner.min.compaction.lag.ms", kmsg.ConfigTypeLong},
	"min.insync.replicas":                     {"1", "min.insync.replicas", kmsg.ConfigTypeInt},
	"preallocate":                             {"false", "log.preallocate", kmsg.ConfigTypeBoolean},
	"remote.log.copy.disable":                 {"false", "", kmsg.ConfigTypeBoolean},
	"remote.log.delete.on.disable":            {"false", "", kmsg.ConfigTypeBoolean},
	"remote.storage.enable":                   {"false", "", kmsg.ConfigTypeBoolean},
	"retention.bytes":                         {"-1", "log.retention.bytes", kmsg.ConfigTypeLong},
	"retention.ms":                            {"604800000", "log.retention.ms", kmsg.ConfigTypeLong},
	"segment.bytes":                           {"1073741824", "log.segment.bytes", kmsg.ConfigTypeInt},
	"segment.index.bytes":                     {"10485760", "log.index.size.max.bytes", kmsg.ConfigTypeInt},
	"segment.jitter.ms":                       {"0", "log.roll.jitter.ms", kmsg.ConfigTypeLong},
	"segment.ms":                              {"604800000", "log.roll.ms", kmsg.ConfigTypeLong},
	"unclean.leader.election.enable":          {"false", "unclean.leader.election.enable", kmsg.ConfigTypeBoolean},
}

func describeConfigs(t *testing.T, ts *testServer, typ kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	req.Resources = append(req.Resources, r)
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	resp, err := req.RequestWith(testCtx(t), ts.client(t))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Resources[0]
}

// TestTopicConfigsDefaults: a topic reports every config Kafka defines, with Kafka's default,
// type, DEFAULT_CONFIG source and broker synonym.
func TestTopicConfigsDefaults(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	if _, err := ts.admin(t).CreateTopics(testCtx(t), 1, 1, nil, "plain"); err != nil {
		t.Fatal(err)
	}
	res := describeConfigs(t, ts, kmsg.ConfigResourceTypeTopic, "plain")
	if res.ErrorCode != 0 {
		t.Fatalf("describe: error %d", res.ErrorCode)
	}
	got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range res.Configs {
		got[c.Name] = c
	}
	for name, want := range kafkaTopicConfigs {
		c, ok := got[name]
		if !ok {
			t.Errorf("%s: not reported", name)
			continue
		}
		if c.Value == nil || *c.Value != want.def || c.ConfigType != want.typ || c.Source != kmsg.ConfigSourceDefaultConfig || c.Documentation == nil {
			t.Errorf("%s: value %v type %v source %v; want %q %v DEFAULT_CONFIG", name, kmsg.StringPtr(deref(c.Value)), c.ConfigType, c.Source, want.def, want.typ)
		}
		var syn []string
		for _, s := range c.ConfigSynonyms {
			syn = append(syn, s.Name)
		}
		if want.broker == "" && len(syn) != 0 || want.broker != "" && (len(syn) != 1 || syn[0] != want.broker) {
			t.Errorf("%s: synonyms %v, want [%s]", name, syn, want.broker)
		}
	}
	if len(got) != len(kafkaTopicConfigs) {
		t.Errorf("%d configs reported, Kafka defines %d", len(got), len(kafkaTopicConfigs))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestTopicConfigsAcceptedAndValidated: every config Kafka defines is accepted with a valid
// value (stored in canonical form, reported as DYNAMIC_TOPIC_CONFIG), and a value Kafka
// refuses is refused with INVALID_CONFIG and a message.
func TestTopicConfigsAcceptedAndValidated(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	set := map[string]string{
		"cleanup.policy": "delete", "compression.gzip.level": "5", "compression.lz4.level": "10",
		"compression.type": "lz4", "compression.zstd.level": "-5", "delete.retention.ms": "1000",
		"file.delete.delay.ms": "5", "flush.messages": "100", "flush.ms": "1000",
		"follower.replication.throttled.replicas": "0:1, 1:1", "index.interval.bytes": "8192",
		"leader.replication.throttled.replicas": "*", "local.retention.bytes": "-2", "local.retention.ms": "-2",
		"max.compaction.lag.ms": "100000", "max.message.bytes": "2000000",
		"message.timestamp.after.max.ms": "1000", "message.timestamp.before.max.ms": "2000",
		"message.timestamp.type": "LogAppendTime", "min.cleanable.dirty.ratio": "0.25",
		"min.compaction.lag.ms": "10", "min.insync.replicas": "2", "preallocate": "TRUE",
		"remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
		"remote.storage.enable": "false", "retention.bytes": "-7", "retention.ms": "-1",
		"segment.bytes": "1048576", "segment.index.bytes": "1048576", "segment.jitter.ms": "10",
		"segment.ms": "3600000", "unclean.leader.election.enable": "true",
	}
	if len(set) != len(kafkaTopicConfigs) {
		t.Fatalf("BUG in test: %d values for %d configs", len(set), len(kafkaTopicConfigs))
	}
	canonical := map[string]string{"preallocate": "true", "follower.replication.throttled.replicas": "0:1,1:1"}
	cfg := map[string]*string{}
	for k, v := range set {
		cfg[k] = kadm.StringPtr(v)
	}
	if r, err := adm.CreateTopics(ctx, 1, 1, cfg, "full"); err != nil || r["full"].Err != nil {
		t.Fatalf("create with every config: %v %v %s", err, r["full"].Err, r["full"].ErrMessage)
	}
	res := describeConfigs(t, ts, kmsg.ConfigResourceTypeTopic, "full")
	for _, c := range res.Configs {
		want := set[c.Name]
		if cv, ok := canonical[c.Name]; ok {
			want = cv
		}
		if deref(c.Value) != want || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: %q from %v, want %q from DYNAMIC_TOPIC_CONFIG", c.Name, deref(c.Value), c.Source, want)
		}
	}

	for _, bad := range []struct{ name, value string }{
		{"compression.type", "brotli"},
		{"compression.gzip.level", "0"},
		{"compression.lz4.level", "18"},
		{"compression.zstd.level", "23"},
		{"min.insync.replicas", "0"},
		{"unclean.leader.election.enable", "yes"},
		{"preallocate", "1"},
		{"min.cleanable.dirty.ratio", "1.5"},
		{"cleanup.policy", "compact,compact"},
		{"cleanup.policy", "purge"},
		{"remote.storage.enable", "true"},
		{"follower.replication.throttled.replicas", "0-1"},
		{"flush.messages", "0"},
		{"delete.retention.ms", "-1"},
		{"local.retention.ms", "-3"},
		{"max.message.bytes", "4294967296"},
		{"segment.index.bytes", "3"},
		{"message.timestamp.type", "logappendtime"},
		{"message.format.version", "3.0"},
		{"min.compaction.lag.ms", "200000"}, // above max.compaction.lag.ms (100000)
	} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: bad.name, Value: kadm.StringPtr(bad.value)}}, "full")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(r[0].Err, kerr.InvalidConfig) || r[0].ErrMessage == "" {
			t.Errorf("%s=%s: %v %q, want INVALID_CONFIG with a message", bad.name, bad.value, r[0].Err, r[0].ErrMessage)
		}
	}
	res = describeConfigs(t, ts, kmsg.ConfigResourceTypeTopic, "full")
	for _, c := range res.Configs {
		if c.Name == "compression.type" && deref(c.Value) != "lz4" {
			t.Errorf("a refused alteration changed compression.type to %q", deref(c.Value))
		}
	}
}

// TestCleanupPolicyEmpty: an empty cleanup.policy is accepted, as Kafka 4.4 accepts it, whether
// set, given at creation or left by SUBTRACT (confluent-kafka-python's integration tests do
// that): DescribeConfigs reports it empty, and the log is neither deleted by retention nor
// compacted.
func TestCleanupPolicyEmpty(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "sub", "set"); err != nil {
		t.Fatal(err)
	}
	if r, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("")}, "created"); err != nil || r.Error() != nil {
		t.Fatalf("create with an empty cleanup.policy: %v %v", err, r.Error())
	}
	for _, a := range []struct {
		topic string
		op    kadm.IncrementalOp
		value string
	}{{"sub", kadm.SubtractConfig, "delete"}, {"set", kadm.SetConfig, ""}} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: a.op, Name: "cleanup.policy", Value: kadm.StringPtr(a.value)}}, a.topic)
		if err != nil || r[0].Err != nil {
			t.Fatalf("%s: %v %v %s", a.topic, err, r[0].Err, r[0].ErrMessage)
		}
	}
	for _, topic := range []string{"sub", "set", "created"} {
		for _, c := range describeConfigs(t, ts, kmsg.ConfigResourceTypeTopic, topic).Configs {
			if c.Name == "cleanup.policy" && (deref(c.Value) != "" || c.Source != kmsg.ConfigSourceDynamicTopicConfig) {
				t.Errorf("%s: cleanup.policy %q from %v, want \"\" from DYNAMIC_TOPIC_CONFIG", topic, deref(c.Value), c.Source)
			}
		}
		tp, _ := ts.st.Topic(topic)
		if c := tp.Config(); c.CleanupPolicyDel || c.Compact {
			t.Errorf("%s: delete %v compact %v with an empty cleanup.policy", topic, c.CleanupPolicyDel, c.Compact)
		}
	}
}

// TestTopicConfigsBrokerDefaultsAndListOps: a broker default under its broker synonym is
// inherited (DYNAMIC_DEFAULT_BROKER_CONFIG); APPEND and SUBTRACT work on LIST configs, starting
// from the default, and are refused on others.
func TestTopicConfigsBrokerDefaultsAndListOps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "inherit"); err != nil {
		t.Fatal(err)
	}
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Name: "log.cleaner.delete.retention.ms", Value: kadm.StringPtr("1234")},
		{Name: "compression.type", Value: kadm.StringPtr("zstd")},
	})
	if err != nil || br[0].Err != nil {
		t.Fatalf("broker alter: %v %+v", err, br)
	}
	inc := func(op kadm.IncrementalOp, name, value string) error {
		t.Helper()
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: name, Value: kadm.StringPtr(value)}}, "inherit")
		if err != nil {
			t.Fatal(err)
		}
		return r[0].Err
	}
	if err := inc(kadm.AppendConfig, "leader.replication.throttled.replicas", "0:1"); err != nil {
		t.Fatal(err)
	}
	if err := inc(kadm.AppendConfig, "leader.replication.throttled.replicas", "1:1"); err != nil {
		t.Fatal(err)
	}
	if err := inc(kadm.SubtractConfig, "leader.replication.throttled.replicas", "0:1"); err != nil {
		t.Fatal(err)
	}
	if err := inc(kadm.AppendConfig, "cleanup.policy", "delete"); err != nil { // already there
		t.Fatal(err)
	}
	if err := inc(kadm.AppendConfig, "retention.ms", "5"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("APPEND to a LONG: %v, want INVALID_CONFIG", err)
	}
	res := describeConfigs(t, ts, kmsg.ConfigResourceTypeTopic, "inherit")
	want := map[string]struct {
		v   string
		src kmsg.ConfigSource
	}{
		"delete.retention.ms":                   {"1234", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
		"compression.type":                      {"zstd", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
		"leader.replication.throttled.replicas": {"1:1", kmsg.ConfigSourceDynamicTopicConfig},
		"cleanup.policy":                        {"delete", kmsg.ConfigSourceDynamicTopicConfig},
	}
	for _, c := range res.Configs {
		if w, ok := want[c.Name]; ok && (deref(c.Value) != w.v || c.Source != w.src) {
			t.Errorf("%s: %q from %v, want %q from %v", c.Name, deref(c.Value), c.Source, w.v, w.src)
		}
	}
}

// TestGroupConfigs: GROUP resources are described with Kafka's defaults, altered
// incrementally, validated against Kafka's bounds, and kept across a restart.
func TestGroupConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServerDir(t, dir)
	ctx := testCtx(t)
	value := func(res kmsg.DescribeConfigsResponseResource, name string) (string, kmsg.ConfigSource) {
		t.Helper()
		for _, c := range res.Configs {
			if c.Name == name {
				return deref(c.Value), c.Source
			}
		}
		t.Fatalf("%s not reported: %+v", name, res)
		return "", 0
	}
	res := describeConfigs(t, ts, kmsg.ConfigResourceTypeGroupConfig, "g1")
	for name, def := range map[string]string{
		"consumer.session.timeout.ms": "45000", "consumer.heartbeat.interval.ms": "5000",
		"share.session.timeout.ms": "45000", "share.heartbeat.interval.ms": "5000",
		"share.record.lock.duration.ms": "30000", "share.auto.offset.reset": "latest",
		"share.isolation.level": "read_uncommitted", "share.delivery.count.limit": "5",
	} {
		if v, src := value(res, name); v != def || src != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("%s: %q from %v, want default %q", name, v, src, def)
		}
	}
	alterGroup := func(group, name, v string) error {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = name, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, ts.client(t))
		if err != nil {
			t.Fatal(err)
		}
		out := resp.Resources[0]
		if out.ErrorCode != 0 && deref(out.ErrorMessage) == "" {
			t.Errorf("%s=%s refused without a message", name, v)
		}
		return kerr.ErrorForCode(out.ErrorCode)
	}
	alter := func(name, v string) error { t.Helper(); return alterGroup("g1", name, v) }
	for _, ok := range [][2]string{{"consumer.session.timeout.ms", "50000"}, {"share.auto.offset.reset", "by_duration:PT1H30M"}, {"share.isolation.level", "read_committed"}} {
		if err := alter(ok[0], ok[1]); err != nil {
			t.Errorf("%s=%s: %v", ok[0], ok[1], err)
		}
	}
	for _, bad := range [][2]string{
		{"consumer.session.timeout.ms", "30000"}, {"consumer.heartbeat.interval.ms", "20000"},
		{"share.auto.offset.reset", "by_duration:-PT1H"}, {"share.isolation.level", "none"},
		{"no.such.config", "1"}, {"retention.ms", "1000"},
	} {
		if err := alter(bad[0], bad[1]); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("%s=%s: %v, want INVALID_CONFIG", bad[0], bad[1], err)
		}
	}
	if err := alterGroup("", "consumer.session.timeout.ms", "50000"); !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("empty group name: %v, want INVALID_REQUEST", err)
	}

	ts.stop(t)
	ts = startServerDir(t, dir)
	res = describeConfigs(t, ts, kmsg.ConfigResourceTypeGroupConfig, "g1")
	if v, src := value(res, "consumer.session.timeout.ms"); v != "50000" || src != kmsg.ConfigSourceGroupConfig {
		t.Errorf("after restart: %q from %v, want 50000 from GROUP_CONFIG", v, src)
	}
	if v, _ := value(res, "share.auto.offset.reset"); !strings.EqualFold(v, "by_duration:PT1H30M") {
		t.Errorf("after restart: share.auto.offset.reset %q", v)
	}
}
