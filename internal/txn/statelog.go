package txn

// The coordinator's state log (Kafka's __transaction_state, kept as yard's own log in
// <data-dir>/__transaction_state/): one internal/log.Log of RecordBatch v2 batches, each
// holding one record whose key is a transactional ID and whose value is that ID's whole state
// (JSON, below) or null (the ID expired). Replay applies records in order; the last record of
// an ID wins, as in a compacted topic. When the log holds many more records than live IDs, the
// live states are appended afresh and everything before them is dropped
// (DeleteRecordsBefore), so replay from the log start rebuilds the same state.
//
// Value, JSON: {"v": 1, "pid": P, "epoch": E, "last_pid": P, "last_epoch": E,
// "timeout_ms": T, "state": "Ongoing", "start_ms": T, "update_ms": T,
// "partitions": [["topic", 0], ...], "groups": ["g", ...],
// "offsets": {"group": [["topic", 0, offset, leaderEpoch, "metadata"], ...]},
// "marker_pid": P, "marker_epoch": E}; the last two only while a transaction is being
// completed with markers that name another producer ID than pid (see meta.markerPID).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	stateValueVersion  = 1
	stateSegmentBytes  = 16 << 20
	stateReplayBytes   = 1 << 20
	compactMinRecords  = 1000
	maxTransactionalID = 1 << 15
)

var errCorruptState = errors.New("corrupt transaction state record")

// stateScalars is the part of a state record that encodeState writes and decodeState reads
// alike; embedded in both, its fields come first in the JSON, as they are promoted.
type stateScalars struct {
	V         int    `json:"v"`
	PID       int64  `json:"pid"`
	Epoch     int16  `json:"epoch"`
	LastPID   int64  `json:"last_pid"`
	LastEpoch int16  `json:"last_epoch"`
	TimeoutMs int32  `json:"timeout_ms"`
	State     string `json:"state"`
	StartMs   int64  `json:"start_ms"`
	UpdateMs  int64  `json:"update_ms"`
	// MarkerPID and MarkerEpoch: meta.markerPID/markerEpoch, absent when -1.
	MarkerPID   *int64 `json:"marker_pid,omitempty"`
	MarkerEpoch *int16 `json:"marker_epoch,omitempty"`
}

type stateValue struct {
	stateScalars
	Partitions [][2]any            `json:"partitions,omitempty"`
	Groups     []string            `json:"groups,omitempty"`
	Offsets    map[string][][5]any `json:"offsets,omitempty"`
}

// encodeState renders m's durable part. m.mu held.
func encodeState(m *meta) ([]byte, error) {
	v := stateValue{stateScalars: stateScalars{V: stateValueVersion, PID: m.pid, Epoch: m.epoch, LastPID: m.lastPID, LastEpoch: m.lastEpoch,
		TimeoutMs: m.timeoutMs, State: m.state.String(), StartMs: m.startMs, UpdateMs: m.updateMs}}
	if m.markerPID >= 0 {
		pid, epoch := m.markerPID, m.markerEpoch
		v.MarkerPID, v.MarkerEpoch = &pid, &epoch
	}
	for _, tp := range m.sortedPartitions() {
		v.Partitions = append(v.Partitions, [2]any{tp.Topic, tp.Partition})
	}
	for g := range m.groups {
		v.Groups = append(v.Groups, g)
	}
	sort.Strings(v.Groups)
	for g, offs := range m.offsets {
		if v.Offsets == nil {
			v.Offsets = map[string][][5]any{}
		}
		for tp, o := range offs {
			v.Offsets[g] = append(v.Offsets[g], [5]any{tp.Topic, tp.Partition, o.Offset, o.LeaderEpoch, o.Metadata})
		}
	}
	return json.Marshal(v)
}

// decodeState rebuilds a meta from a record value.
func decodeState(id string, b []byte) (*meta, error) {
	var raw struct {
		stateScalars
		Partitions []struct {
			Topic     string
			Partition int32
		} `json:"-"`
		PartitionsRaw [][2]json.RawMessage            `json:"partitions"`
		Groups        []string                        `json:"groups"`
		Offsets       map[string][][5]json.RawMessage `json:"offsets"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptState, err)
	}
	if raw.V != stateValueVersion {
		return nil, fmt.Errorf("%w: value version %d", errCorruptState, raw.V)
	}
	st, ok := ParseState(raw.State)
	if !ok || raw.PID < 0 || raw.Epoch < 0 {
		return nil, fmt.Errorf("%w: state %q, producer %d epoch %d", errCorruptState, raw.State, raw.PID, raw.Epoch)
	}
	m := newMeta(id)
	m.pid, m.epoch, m.lastPID, m.lastEpoch = raw.PID, raw.Epoch, raw.LastPID, raw.LastEpoch
	m.timeoutMs, m.state, m.startMs, m.updateMs = raw.TimeoutMs, st, raw.StartMs, raw.UpdateMs
	if raw.MarkerPID != nil && raw.MarkerEpoch != nil && *raw.MarkerPID >= 0 {
		m.markerPID, m.markerEpoch = *raw.MarkerPID, *raw.MarkerEpoch
	}
	for _, p := range raw.PartitionsRaw {
		var tp TopicPartition
		if json.Unmarshal(p[0], &tp.Topic) != nil || json.Unmarshal(p[1], &tp.Partition) != nil {
			return nil, fmt.Errorf("%w: partition", errCorruptState)
		}
		m.partitions[tp] = struct{}{}
	}
	for _, g := range raw.Groups {
		m.groups[g] = struct{}{}
	}
	for g, offs := range raw.Offsets {
		for _, o := range offs {
			var tp TopicPartition
			var ov Offset
			if json.Unmarshal(o[0], &tp.Topic) != nil || json.Unmarshal(o[1], &tp.Partition) != nil ||
				json.Unmarshal(o[2], &ov.Offset) != nil || json.Unmarshal(o[3], &ov.LeaderEpoch) != nil ||
				json.Unmarshal(o[4], &ov.Metadata) != nil {
				return nil, fmt.Errorf("%w: offset", errCorruptState)
			}
			m.addOffset(g, tp, ov)
		}
	}
	return m, nil
}

// stateLog is the durable side of the coordinator. Its methods are called with the
// coordinator's logMu held, so the log's order is the order of the changes.
type stateLog struct {
	log    *log.Log
	now    func() time.Time
	logger *slog.Logger
	buf    []byte
	// records since the last compaction (or the start)
	records int
}

func openStateLog(dir string, opts log.Options, now func() time.Time, logger *slog.Logger) (*stateLog, error) {
	opts.SegmentBytesMax = stateSegmentBytes
	opts.RetentionMs, opts.RetentionBytes = -1, -1
	opts.Now, opts.Logger = now, logger
	l, err := log.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open transaction state log: %w", err)
	}
	return &stateLog{log: l, now: now, logger: logger}, nil
}

// stateStore is where a coordinator's state records are kept: a stateLog on a single node, a
// partition of the replicated __transaction_state on a cluster node (statepart.go). Its
// methods are called with the coordinator's logMu held.
type stateStore interface {
	// replay calls fn for every record, in order (value nil: the ID was removed).
	replay(fn func(id string, value []byte) error) error
	// write appends one record per entry as one batch and returns once it is durable.
	write(ctx context.Context, recs []stateRecord) (int64, error)
	// maybeCompact drops records that live ones replace, if the store does it itself.
	maybeCompact(ctx context.Context, live []stateRecord) error
	close() error
}

// stateReader is what replaying state records reads: an internal/log.Log or a partition.
type stateReader interface {
	Read(offset int64, maxBytes int) (*log.ReadResult, error)
}

// replay calls fn for every record, in order (value nil: the ID was removed).
func (s *stateLog) replay(fn func(id string, value []byte) error) error {
	return replayRecords(s.log, s.log.StartOffset(), s.log.HighWatermark(), func(id string, value []byte) error {
		s.records++
		return fn(id, value)
	})
}

// replayRecords calls fn for every record of r in [off, end), in order.
func replayRecords(r stateReader, off, end int64, fn func(id string, value []byte) error) error {
	var buf []byte
	for off < end {
		rr, err := r.Read(off, stateReplayBytes)
		if err != nil {
			return fmt.Errorf("cannot read transaction state log at %d: %w", off, err)
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			return fmt.Errorf("cannot read transaction state log at %d: %w", off, err)
		}
		next := off
		for b := buf; len(b) > 0; {
			batch, rest, h, err := rb.Split(b)
			if err != nil {
				return fmt.Errorf("cannot replay transaction state log at %d: %w", next, err)
			}
			b = rest
			it := rb.NewRecords(batch[rb.HeaderLen:], h.RecordCount)
			var r rb.Record
			for it.Next(&r) {
				if err := fn(string(r.Key), r.Value); err != nil {
					return fmt.Errorf("cannot replay transaction state log at %d: %w", h.BaseOffset, err)
				}
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("cannot replay transaction state log at %d: %w", h.BaseOffset, err)
			}
			next = h.LastOffset() + 1
		}
		if next <= off {
			return fmt.Errorf("cannot replay transaction state log at %d: no progress", off)
		}
		off = next
	}
	return nil
}

// appendStateBatch builds the batch of recs.
func appendStateBatch(dst []byte, recs []stateRecord, nowMs int64) []byte {
	h := rb.NewHeader(int32(len(recs)), nowMs)
	b := rb.AppendHeader(dst, &h)
	for i, r := range recs {
		rec := rb.Record{OffsetDelta: int32(i), Key: []byte(r.id), Value: r.value}
		b = rec.AppendTo(b)
	}
	return rb.Finish(b, 0)
}

// write appends one record per entry as one batch and waits until it is durable.
func (s *stateLog) write(ctx context.Context, recs []stateRecord) (int64, error) {
	if len(recs) == 0 {
		return -1, nil
	}
	b := appendStateBatch(s.buf[:0], recs, s.now().UnixMilli())
	s.buf = b
	res, err := s.log.AppendNoWait(b)
	if err != nil {
		return -1, fmt.Errorf("cannot append to transaction state log: %w", err)
	}
	s.records += len(recs)
	if err := s.log.WaitDurable(ctx, res.LastOffset); err != nil {
		return -1, fmt.Errorf("cannot make transaction state durable: %w", err)
	}
	return res.BaseOffset, nil
}

type stateRecord struct {
	id    string
	value []byte // nil: removed
}

// maybeCompact rewrites the live states when the log holds many more records than that.
func (s *stateLog) maybeCompact(ctx context.Context, live []stateRecord) error {
	if s.records < compactMinRecords || s.records < 4*len(live) {
		return nil
	}
	first := s.log.EndOffset()
	for i := 0; i < len(live); i += 100 {
		if _, err := s.write(ctx, live[i:min(i+100, len(live))]); err != nil {
			return err
		}
	}
	if err := s.log.DeleteRecordsBefore(first); err != nil {
		return fmt.Errorf("cannot compact transaction state log: %w", err)
	}
	s.records = len(live)
	return nil
}

func (s *stateLog) close() error { return s.log.Close() }
