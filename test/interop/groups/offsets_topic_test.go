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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// One partition, assigned (no group to join): quicker, and only the test group's records.
	cmd := exec.CommandContext(ctx, "java", "-cp", tools.kafkaToolsCP, "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"--bootstrap-server", addr, "--topic", "__consumer_offsets", "--partition", strconv.Itoa(int(partition)),
		"--offset", "earliest", "--timeout-ms", "10000",
		"--formatter", "org.apache.kafka.tools.consumer."+formatter)
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
