package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Range fetch: a member sent a partition snapshot {index, end} whose log ends before end
// (it was stopped for longer than the leader kept entries, or the leader restarted) copies the
// missing range [its end, end) from another member's log, batch by batch and byte for byte
// (same offsets, same leader epochs), then restores the snapshot (internal/cluster's
// RangeStateMachine drives it over the peer transport).
//
// While the fetch runs, the log holds batches beyond what this member applied: the pending
// range, recorded in <data-dir>/raft/applied/<topic>-<partition>.range.json as {"from": the
// log end (and checkpoint) when the fetch began, "index", "end": the snapshot's}. Restoring the
// snapshot adopts it (the checkpoint moves to {index, end}, the file goes); applying an entry
// drops it first (a new leader still had the entries: the log is cut back to "from" and the
// entry appended there). A restart keeps what was fetched (the file says so) and the next fetch
// resumes at the log end; without the file the log is cut back to its checkpoint as usual.
//
// Request (JSON): {"from": F, "end": E}: the batches from offset F, below E.
// Response (binary, big-endian):
//
//	0  uint8  version (1)
//	1  int64  the serving log's start offset
//	9  int64  the serving log's high watermark (durable end): nothing at or beyond it is sent
//	17 ...    whole batches, the first one holding F, all below E and the high watermark; none
//	          if F is below the start (the requester restarts its log there) or not below the
//	          high watermark
const (
	rangeRespVersion     = 1
	rangeRespHeaderBytes = 17
)

// replicaRange is a pending range fetch (the .range.json file).
type replicaRange struct {
	From  int64  `json:"from"`
	Index uint64 `json:"index"`
	End   int64  `json:"end"`
}

type rangeRequest struct {
	From int64 `json:"from"`
	End  int64 `json:"end"`
}

func (p *Partition) rangePath() string {
	return strings.TrimSuffix(p.checkpointPath(), ".json") + ".range.json"
}

func decodeReplicaSnapshot(p *Partition, data []byte) (replicaCheckpoint, error) {
	var s replicaCheckpoint
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("cannot read snapshot of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if s.End < 0 {
		return s, fmt.Errorf("cannot read snapshot of %s-%d: end offset %d", p.Topic.Name, p.Index, s.End)
	}
	return s, nil
}

// ReplicaRangeRequest is the first request of a range fetch for a snapshot this member cannot
// restore yet; it records the fetch as pending (durably) before anything is fetched.
func (p *Partition) ReplicaRangeRequest(snap []byte) ([]byte, error) {
	s, err := decodeReplicaSnapshot(p, snap)
	if err != nil {
		return nil, err
	}
	p.rangeMu.Lock()
	defer p.rangeMu.Unlock()
	pr := p.pendingRange.Load()
	if pr == nil || pr.Index != s.Index || pr.End != s.End {
		next := &replicaRange{Index: s.Index, End: s.End}
		if pr != nil {
			next.From = pr.From
		} else {
			// A checkpoint at the applied end: where a restart resumes, and what the
			// pending range is cut back to if an applied entry supersedes it.
			if err := p.writeReplicaCheckpoint(); err != nil {
				return nil, fmt.Errorf("cannot start range fetch of %s-%d: %w", p.Topic.Name, p.Index, err)
			}
			next.From = p.log.EndOffset()
		}
		if err := p.writePendingRange(next); err != nil {
			return nil, err
		}
	}
	return json.Marshal(rangeRequest{From: p.log.EndOffset(), End: s.End})
}

func (p *Partition) writePendingRange(r *replicaRange) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := p.rangePath()
	if err := datadir.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, datadir.FilePerm); err != nil {
		return fmt.Errorf("cannot record range fetch of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.pendingRange.Store(r)
	return nil
}

// clearPendingRange forgets the pending range (its batches were adopted or cut back).
func (p *Partition) clearPendingRange() error {
	p.pendingRange.Store(nil)
	if err := os.Remove(p.rangePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove range fetch record of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return nil
}

// dropPendingRange cuts the log back to where the pending range began, before an entry is
// applied there. Called with rangeMu held.
func (p *Partition) dropPendingRange(pr *replicaRange) error {
	if err := p.cutTo(pr.From); err != nil {
		return fmt.Errorf("cannot drop the fetched range of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return p.clearPendingRange()
}

// cutTo makes the log end at offset: truncated there, or, if its start is beyond (a fetch
// restarted it past offset), empty at offset. The producer state is rebuilt.
func (p *Partition) cutTo(offset int64) error {
	var err error
	if p.log.StartOffset() > offset {
		err = p.log.ResetTo(offset)
	} else {
		err = p.log.TruncateTo(offset)
	}
	if err != nil {
		return err
	}
	return p.resetProducerState()
}

// resetProducerState rebuilds the idempotent-producer and transaction state from the log.
func (p *Partition) resetProducerState() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.producers, p.ongoing, p.aborted, p.snapshotEnd = map[int64]*producerState{}, map[int64]int64{}, nil, -1
	return p.rebuildProducerState(0)
}

// ReadReplicaRange answers a peer's range request with at most maxBytes of batches (at least
// one whole batch when there is one), from this member's durable log.
func (p *Partition) ReadReplicaRange(req []byte, maxBytes int) ([]byte, error) {
	var q rangeRequest
	if err := json.Unmarshal(req, &q); err != nil {
		return nil, fmt.Errorf("cannot read range request for %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	start, hw := p.log.StartOffset(), p.log.HighWatermark()
	out := make([]byte, rangeRespHeaderBytes, rangeRespHeaderBytes+maxBytes)
	out[0] = rangeRespVersion
	binary.BigEndian.PutUint64(out[1:], uint64(start))
	binary.BigEndian.PutUint64(out[9:], uint64(hw))
	limit := min(q.End, hw)
	if q.From < start || q.From >= limit {
		return out, nil
	}
	rr, err := p.log.Read(q.From, maxBytes)
	if errors.Is(err, log.ErrOffsetOutOfRange) {
		return out, nil // retention moved the start meanwhile: asked again, the answer says so
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read range of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	defer rr.Release()
	out, err = rr.AppendTo(out)
	if err != nil {
		return nil, fmt.Errorf("cannot read range of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	// Keep the batches below the limit (the read may run past it).
	pos := rangeRespHeaderBytes
	for pos < len(out) {
		pf, err := rb.ParsePrefix(out[pos:])
		if err != nil || pf.BaseOffset >= limit || pf.Size > int64(len(out)-pos) {
			break
		}
		pos += int(pf.Size)
	}
	return out[:pos], nil
}

// WriteReplicaRange appends a range response's batches to the log, as they are, after checking
// them (CRC, offsets contiguous with the log end), fsyncs them, and returns the next request,
// or done once the log reaches the snapshot's end. A response saying the serving log starts
// beyond this log's end restarts this log empty at that start, as a Kafka follower does.
func (p *Partition) WriteReplicaRange(snap, resp []byte) (next []byte, done bool, err error) {
	s, err := decodeReplicaSnapshot(p, snap)
	if err != nil {
		return nil, false, err
	}
	if len(resp) < rangeRespHeaderBytes || resp[0] != rangeRespVersion {
		return nil, false, fmt.Errorf("cannot write range of %s-%d: malformed response (%d bytes)", p.Topic.Name, p.Index, len(resp))
	}
	start, hw := int64(binary.BigEndian.Uint64(resp[1:])), int64(binary.BigEndian.Uint64(resp[9:]))
	batches := resp[rangeRespHeaderBytes:]
	p.rangeMu.Lock()
	defer p.rangeMu.Unlock()
	if pr := p.pendingRange.Load(); pr == nil || pr.Index != s.Index || pr.End != s.End {
		return nil, false, fmt.Errorf("cannot write range of %s-%d: the fetch was superseded (an entry was applied)", p.Topic.Name, p.Index)
	}
	end := p.log.EndOffset()
	if end >= s.End {
		return nil, true, nil
	}
	if len(batches) == 0 {
		if start <= end {
			return nil, false, fmt.Errorf("cannot fetch range of %s-%d from %d: the peer's log holds up to %d", p.Topic.Name, p.Index, end, hw)
		}
		p.Topic.m.log.Warn("the log a replica fetches from starts past this replica's end; restarting this replica's log empty at its start", "topic", p.Topic.Name, "partition", p.Index, "end", end, "start", start)
		if err := p.log.ResetTo(start); err != nil {
			return nil, false, fmt.Errorf("cannot write range of %s-%d: %w", p.Topic.Name, p.Index, err)
		}
		if err := p.resetProducerState(); err != nil {
			return nil, false, err
		}
		end = start
	} else {
		// Skip what this log already holds, then check contiguity batch by batch; the
		// log's append checks every CRC.
		first, pos := -1, 0
		for expect := end; pos < len(batches); {
			pf, err := rb.ParsePrefix(batches[pos:])
			if err != nil || pf.Size > int64(len(batches)-pos) {
				return nil, false, fmt.Errorf("cannot write range of %s-%d: malformed batch at byte %d of the response: %v", p.Topic.Name, p.Index, pos, err)
			}
			switch {
			case pf.LastOffset() < expect && first < 0:
			case pf.BaseOffset != expect:
				return nil, false, fmt.Errorf("cannot write range of %s-%d: batch at offset %d, expected %d (offsets not contiguous)", p.Topic.Name, p.Index, pf.BaseOffset, expect)
			default:
				if first < 0 {
					first = pos
				}
				expect = pf.LastOffset() + 1
			}
			pos += int(pf.Size)
		}
		if first >= 0 {
			if _, err := p.log.AppendNoWait(batches[first:]); err != nil {
				return nil, false, fmt.Errorf("cannot write range of %s-%d: %w", p.Topic.Name, p.Index, err)
			}
			if err := p.log.Sync(); err != nil {
				return nil, false, fmt.Errorf("cannot write range of %s-%d: %w", p.Topic.Name, p.Index, err)
			}
			p.mu.Lock()
			err := p.rebuildProducerState(end)
			p.mu.Unlock()
			if err != nil {
				return nil, false, fmt.Errorf("cannot write range of %s-%d: %w", p.Topic.Name, p.Index, err)
			}
			end = p.log.EndOffset()
		}
	}
	if end >= s.End {
		return nil, true, nil
	}
	next, err = json.Marshal(rangeRequest{From: end, End: s.End})
	return next, false, err
}

// RestoreReplicaSnapshot restores a partition snapshot from any member: a no-op when this
// member applied up to it (its own, after a restart); after a range fetch, the fetched range
// becomes the member's state up to the snapshot (checkpointed durably).
func (p *Partition) RestoreReplicaSnapshot(data []byte) error {
	s, err := decodeReplicaSnapshot(p, data)
	if err != nil {
		return err
	}
	p.rangeMu.Lock()
	defer p.rangeMu.Unlock()
	a, end := p.appliedIndex.Load(), p.log.EndOffset()
	if a >= s.Index && end >= s.End {
		return nil
	}
	if p.pendingRange.Load() == nil || end < s.End {
		return fmt.Errorf("cannot restore snapshot of %s-%d: it refers to entries up to %d (log end %d), this member holds up to %d (log end %d)", p.Topic.Name, p.Index, s.Index, s.End, a, end)
	}
	if end > s.End {
		if err := p.cutTo(s.End); err != nil {
			return fmt.Errorf("cannot restore snapshot of %s-%d: %w", p.Topic.Name, p.Index, err)
		}
	}
	p.appliedIndex.Store(s.Index)
	p.pendingRange.Store(nil) // adopted: the checkpoint covers the range (its record goes after)
	if err := p.writeReplicaCheckpoint(); err != nil {
		return fmt.Errorf("cannot restore snapshot of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return p.clearPendingRange()
}

// preparePendingRange is PrepareReplica's handling of a range fetch a restart interrupted:
// if its record belongs to the checkpoint cp, the fetched batches (up to the snapshot's end)
// stay and the fetch is pending again; a stale record is removed. It reports whether the
// fetch is pending.
func (p *Partition) preparePendingRange(cp replicaCheckpoint) (bool, error) {
	data, err := os.ReadFile(p.rangePath())
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	var pr replicaRange
	if err == nil {
		err = json.Unmarshal(data, &pr)
	}
	if err != nil || pr.From != cp.End || pr.Index <= cp.Index ||
		(p.log.StartOffset() <= pr.From && p.log.EndOffset() < pr.From) {
		return false, p.clearPendingRange()
	}
	if p.log.EndOffset() > pr.End {
		if err := p.cutTo(pr.End); err != nil {
			return false, fmt.Errorf("cannot prepare %s-%d for replay: %w", p.Topic.Name, p.Index, err)
		}
	}
	p.pendingRange.Store(&pr)
	return true, nil
}
