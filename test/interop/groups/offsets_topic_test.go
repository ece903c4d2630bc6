package groups_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// consoleConsumer runs Kafka's kafka-console-consumer on __consumer_offsets from the
// beginning with one of Kafka's formatters for it, until no record has come for a few
// seconds, and returns what it printed and its stderr.
func consoleConsumer(t *testing.T, addr, formatter string, partition int32) (stdout, stderr string) {
	t.Helper()
	return consoleConsumerClass(t, addr, "org.apache.kafka.tools.consumer."+formatter, partition)
}

// consoleConsumerClass is consoleConsumer with a formatter class named in full.
func consoleConsumerClass(t *testing.T, addr, formatter string, partition int32) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One partition, assigned (no group to join): quicker, and only the test group's records.
	cmd := exec.CommandContext(ctx, "java", "-cp", tools.kafkaToolsCP, "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"--bootstrap-server", addr, "--topic", "__consumer_offsets", "--partition", strconv.Itoa(int(partition)),
		"--offset", "earliest", "--timeout-ms", "10000",
		"--formatter", formatter)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run() // it exits non-zero when --timeout-ms passes, which is how it stops here
	if ctx.Err() != nil {
		t.Fatalf("kafka-console-consumer did not stop: %s\n%s", out.String(), errb.String())
	}
	return out.String(), errb.String()
}

// TestKafkaFormattersReadConsumerOffsets: Kafka's own console consumer with its
// OffsetsMessageFormatter and GroupMetadataMessageFormatter (kafka-tools 4.4) decodes the
// records yard writes to __consumer_offsets: a classic group's commits and its generations.
func TestKafkaFormattersReadConsumerOffsets(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, group = "formatted", "formatter-group"
	adm := kadm.NewClient(client(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, client(t, y.KafkaAddr), topic, 0, 10)
	member := client(t, y.KafkaAddr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID("formatter-client"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for read := 0; read < 10; {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the group member read nothing")
		}
		read += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	member.Close() // leaves: the group's empty generation is recorded too

	partition := javaHashPartition(group, 50)
	out, stderr := consoleConsumer(t, y.KafkaAddr, "OffsetsMessageFormatter", partition)
	t.Logf("OffsetsMessageFormatter:\n%s", out)
	for _, want := range []string{`"group":"` + group + `"`, `"topic":"` + topic + `"`, `"offset":`, `"commitTimestamp":`} {
		if !strings.Contains(out, want) {
			t.Errorf("OffsetsMessageFormatter printed no %s:\n%s\n%s", want, out, stderr)
		}
	}
	if strings.Contains(stderr, "Exception") && !strings.Contains(stderr, "TimeoutException") {
		t.Errorf("kafka-console-consumer failed to decode:\n%s", stderr)
	}

	out, stderr = consoleConsumer(t, y.KafkaAddr, "GroupMetadataMessageFormatter", partition)
	t.Logf("GroupMetadataMessageFormatter:\n%s", out)
	for _, want := range []string{`"group":"` + group + `"`, `"protocolType":"consumer"`, `"clientId":"formatter-client"`, `"generation":1`} {
		if !strings.Contains(out, want) {
			t.Errorf("GroupMetadataMessageFormatter printed no %s:\n%s\n%s", want, out, stderr)
		}
	}
	if strings.Contains(stderr, "Exception") && !strings.Contains(stderr, "TimeoutException") {
		t.Errorf("kafka-console-consumer failed to decode:\n%s", stderr)
	}
}

// javaHashPartition is Kafka's partition of __consumer_offsets for group:
// Utils.abs(group.hashCode()) % n (written here again, not taken from yard).
func javaHashPartition(group string, n int32) int32 {
	var h int32
	for _, c := range group { // ASCII group names: one UTF-16 unit per rune
		h = 31*h + int32(c)
	}
	if h == -h { // 0 or Integer.MIN_VALUE, which Utils.abs maps to 0
		return 0
	}
	if h < 0 {
		h = -h
	}
	return h % n
}

// TestKafkaDecodesConsumerGroupRecords: Kafka's own deserializer of __consumer_offsets
// (GroupCoordinatorRecordSerde of kafka 4.4, through the console consumer and a formatter that
// lets every record type through) decodes the KIP-848 records yard writes for a franz-go
// member of a "consumer" protocol group: group and target epochs, the member's metadata, its
// target and current assignments, and the tombstones written when it leaves.
func TestKafkaDecodesConsumerGroupRecords(t *testing.T) {
	if _, err := exec.LookPath("javac"); err != nil {
		t.Skip("no javac")
	}
	classes := t.TempDir()
	if out, err := exec.Command("javac", "-cp", tools.kafkaToolsCP, "-d", classes, "formatter/AllGroupRecordsFormatter.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, group = "formatted-848", "formatter-group-848"
	adm := kadm.NewClient(client(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, client(t, y.KafkaAddr), topic, 0, 10)
	member := client(t, y.KafkaAddr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ClientID("formatter-848"),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for read := 0; read < 10; {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the group member read nothing")
		}
		read += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	member.Close() // leaves: its records get tombstones

	saved := tools.kafkaToolsCP
	tools.kafkaToolsCP = classes + ":" + saved
	defer func() { tools.kafkaToolsCP = saved }()
	out, stderr := consoleConsumerClass(t, y.KafkaAddr, "AllGroupRecordsFormatter", javaHashPartition(group, 50))
	t.Logf("records:\n%s", out)
	for _, want := range []string{
		`{"type":3,"data":{"groupId":"` + group + `"}}`, `"epoch":`,
		`{"type":5,"data":{"groupId":"` + group + `","memberId":`, `"clientId":"formatter-848"`, `"subscribedTopicNames":["` + topic + `"]`, `"serverAssignor":"range"`,
		`{"type":6,`, `"assignmentEpoch":`,
		`{"type":7,`, `"topicPartitions":[{"topicId":`,
		`{"type":8,`, `"memberEpoch":`, `"assignedPartitions":[{"topicId":`, `"partitions":[0,1]`,
		`"value":null`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the records show no %s", want)
		}
	}
	if strings.Contains(stderr, "Exception") && !strings.Contains(stderr, "TimeoutException") {
		t.Errorf("kafka-console-consumer failed to decode:\n%s", stderr)
	}
}
