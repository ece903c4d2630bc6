package amqp_test

import (
	"path/filepath"
	"testing"

	"github.com/yardmq/yard/test/harness"
)

// TestPikaStreamFeatures: pika on a stream queue of three partitions (keys where Kafka's
// murmur2 puts them, per-partition offsets, x-stream-partition) and x-stream-filter.
func TestPikaStreamFeatures(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	h, p := hostPort(y.AMQPAddr)
	runChecks(t, []string{"multi-partition-keys", "filter-exact", "filter-match-unfiltered", "numeric-offset-needs-partition", "partition-offset"},
		tools["PYTHON"], filepath.Join(here, "python", "stream_features.py"), h, p)
}
