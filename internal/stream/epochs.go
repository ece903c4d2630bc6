package stream

// Leader epochs along a partition's log, for OffsetForLeaderEpoch (KIP-101, KIP-320).
//
// Kafka keeps a leader-epoch cache beside each log (epoch -> first offset written in it). yard
// needs none: every batch carries the epoch it was appended in (partitionLeaderEpoch: 0 on a
// single node, the Raft term on a replicated partition), and epochs never decrease along a
// log, because a term only grows and a partition log holds committed entries only, which
// Raft never truncates. So the first offset of the first epoch above E is found by a binary
// search over batch headers: a few header reads for a request clients send only after a
// leader change or an out-of-range fetch.

import (
	"fmt"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// EndOffsetForEpoch answers OffsetForLeaderEpoch for epoch as Kafka's leader does, with the
// current leader epoch as the latest one (Kafka records it at election, before any write):
//   - epoch is the current one: (epoch, the log's end as readers see it);
//   - an older one: the largest epoch at most epoch that the log holds (epoch itself if the
//     log holds none that old), and the first offset of the first larger epoch, or the log's
//     end if the log holds no larger one;
//   - a negative or a newer one: (-1, -1), UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64, error) {
	cur := p.LeaderEpoch()
	if epoch < 0 || epoch > cur {
		return -1, -1, nil
	}
	end := p.HighWatermark()
	if epoch == cur {
		return epoch, end, nil
	}
	start := p.StartOffset()
	// The smallest offset o in [start, end) whose batch has an epoch above epoch, by
	// bisection on the monotone "batch at o is newer": lo is always below it, hi at or above.
	lo, hi := start-1, end
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		h, err := p.batchHeaderAt(mid)
		if err != nil {
			return -1, -1, err
		}
		if h == nil { // cleaned away from mid to the end
			hi = mid
			continue
		}
		if h.LeaderEpoch > epoch {
			hi = mid
		} else {
			lo = h.BaseOffset + int64(h.LastOffsetDelta) // the whole batch is at most epoch
			if lo >= hi {
				lo = hi - 1
			}
		}
	}
	if hi < end {
		// The first newer batch holds hi, or starts after it if compaction left a gap.
		h, err := p.batchHeaderAt(hi)
		if err != nil {
			return -1, -1, err
		}
		if h != nil {
			hi = max(min(h.BaseOffset, hi), start)
		}
	}
	floor := epoch
	if hi > start {
		h, err := p.batchHeaderAt(hi - 1)
		if err != nil {
			return -1, -1, err
		}
		if h != nil && h.LeaderEpoch <= epoch {
			floor = h.LeaderEpoch
		}
	}
	return floor, hi, nil
}

// EpochAt is the leader epoch offset was written in, or the current one for the log's end
// (where the next record goes) and beyond.
func (p *Partition) EpochAt(offset int64) (int32, error) {
	if offset >= p.HighWatermark() {
		return p.LeaderEpoch(), nil
	}
	h, err := p.batchHeaderAt(max(offset, p.StartOffset()))
	if err != nil || h == nil {
		return p.LeaderEpoch(), err
	}
	return h.LeaderEpoch, nil
}

// batchHeaderAt is the header of the batch holding offset, or of the first one after it if
// compaction removed offset; nil if none is left below the high watermark.
func (p *Partition) batchHeaderAt(offset int64) (*rb.Header, error) {
	rr, err := p.log.Read(offset, 1)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	if len(rr.Ranges) == 0 {
		return nil, nil
	}
	var buf [rb.HeaderLen]byte
	r := rr.Ranges[0]
	if _, err := r.File.ReadAt(buf[:], r.Pos); err != nil {
		return nil, fmt.Errorf("cannot read batch header of %s-%d at %d: %w", p.Topic.Name, p.Index, offset, err)
	}
	h, err := rb.ParseHeader(buf[:])
	if err != nil {
		return nil, err
	}
	return &h, nil
}
