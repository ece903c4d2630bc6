package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/yardmq/yard/internal/cluster"
)

// TestErrorCodeRaftHostClosed: a produce to a partition whose node stopped its Raft host
// (its WAL write failed: disk full) is refused with a code clients retry, not
// UNKNOWN_SERVER_ERROR (which fails the records: most of the 68,195 that failed in a 100-round fault run).
func TestErrorCodeRaftHostClosed(t *testing.T) {
	err := fmt.Errorf("cannot append to t-0: %w", cluster.ErrClosed)
	if got := errorCode(err); got != kerr.KafkaStorageError.Code {
		t.Fatalf("errorCode(%v) = %d, want KAFKA_STORAGE_ERROR (%d)", err, got, kerr.KafkaStorageError.Code)
	}
}
