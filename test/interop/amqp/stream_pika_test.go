package amqp_test

import (
	"path/filepath"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestPikaStreamFeatures: pika on a stream queue of three partitions (keys where Kafka's
// murmur2 puts them, per-partition offsets, x-stream-partition) and x-stream-filter; then the
// stream keeps its partitions and data across kill -9.
func TestPikaStreamFeatures(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	h, p := hostPort(y.AMQPAddr)
	runChecks(t, []string{"multi-partition-keys", "filter-exact", "filter-match-unfiltered", "numeric-offset-needs-partition", "partition-offset"},
		tools["PYTHON"], filepath.Join(here, "python", "stream_features.py"), h, p)

	y.Kill()
	y.Restart()
	_, ch := dialY(t, y)
	if _, err := ch.QueueDeclarePassive("py.stream", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// The script published 30 messages over 5 keys; each partition is still read in order.
	all := streamConsume(t, ch, "py.stream", "first", 30)
	next := map[int32]int64{}
	for _, m := range all {
		part, ok := m.Headers["x-stream-partition"].(int32)
		if !ok || offsetOf(t, m) != next[part] {
			t.Fatalf("after restart: %q at partition %v offset %d, want offset %d", m.Body, m.Headers["x-stream-partition"], offsetOf(t, m), next[part])
		}
		next[part]++
	}
	if len(next) != 3 {
		t.Fatalf("after restart the stream has records in %d partitions, want 3", len(next))
	}
	_, err := ch.Consume("py.stream", "", false, false, false, false, amqp091.Table{"x-stream-offset": int64(0)})
	if err == nil {
		t.Fatal("numeric offset without x-stream-partition accepted after restart")
	}
}
