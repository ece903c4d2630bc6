package txn

// The state log of a coordinator on a cluster node: one partition of the replicated
// __transaction_state (placement.go), records as in statelog.go. A write is a Raft entry of
// the partition, proposed by its leader and applied only in the term the coordinator loaded
// in (stream.Partition.AppendInternalInTerm); it returns once committed (the Raft WAL is
// durable) and applied here. The topic is compacted by the log cleaner (the last record of an
// ID wins, as replay reads it), so the coordinator does not compact it itself.

import (
	"context"
	"fmt"
	"time"

	"github.com/yardmq/yard/internal/stream"
)

type partitionStore struct {
	p    *stream.Partition
	term uint64
	now  func() time.Time
	lost func() // a write failed: what the partition holds is unknown until loaded again
	buf  []byte
}

func (s *partitionStore) replay(fn func(id string, value []byte) error) error {
	return replayRecords(s.p, s.p.StartOffset(), s.p.EndOffset(), fn)
}

func (s *partitionStore) write(ctx context.Context, recs []stateRecord) (int64, error) {
	if len(recs) == 0 {
		return -1, nil
	}
	s.buf = appendStateBatch(s.buf[:0], recs, s.now().UnixMilli())
	last, err := s.p.AppendInternalInTerm(s.buf, s.term)
	if err != nil {
		s.lost()
		return -1, fmt.Errorf("cannot write transaction state to %s-%d: %w (%w)", s.p.Topic.Name, s.p.Index, err, ErrNotCoordinator)
	}
	return last, nil
}

func (s *partitionStore) maybeCompact(context.Context, []stateRecord) error { return nil }

func (s *partitionStore) close() error { return nil }
