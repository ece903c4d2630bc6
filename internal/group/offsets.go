package group

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/log"
)

const (
	// offsetsSegmentBytes is small so that a snapshot frees the segments it supersedes soon.
	offsetsSegmentBytes = 16 << 20
	// snapshotChunkRecords bounds one snapshot batch.
	snapshotChunkRecords = 1000
	// compactMinRecords: below this many records since the last snapshot, never compact.
	compactMinRecords = 10000
	replayReadBytes   = 1 << 20
)

// offsetStore holds committed offsets in memory, backed by the offsets log (offsetlog.go).
//
// mu guards groups, live and sinceSnapshot, and is held around AppendNoWait so that the log's
// order is the map's order; it is never held across WaitDurable, so concurrent commits share
// one fsync.
type offsetStore struct {
	log    *log.Log
	now    func() time.Time
	logger *slog.Logger

	mu            sync.Mutex
	groups        map[string]map[TopicPartition]OffsetValue
	live          int // entries in groups
	sinceSnapshot int // records in the log after the last snapshot (or since the start)
	buf           []byte
}

func openOffsetStore(dir string, opts log.Options, now func() time.Time, logger *slog.Logger) (*offsetStore, error) {
	opts.SegmentBytesMax = offsetsSegmentBytes
	opts.RetentionMs, opts.RetentionBytes = -1, -1 // we decide what is dropped
	opts.Now, opts.Logger = now, logger
	l, err := log.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open offsets log: %w", err)
	}
	s := &offsetStore{log: l, now: now, logger: logger, groups: map[string]map[TopicPartition]OffsetValue{}}
	if err := s.replay(); err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// replay rebuilds the map from the log start to its end.
func (s *offsetStore) replay() error {
	off, end := s.log.StartOffset(), s.log.HighWatermark()
	var buf []byte
	for off < end {
		rr, err := s.log.Read(off, replayReadBytes)
		if err != nil {
			return fmt.Errorf("cannot read offsets log at %d: %w", off, err)
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			return fmt.Errorf("cannot read offsets log at %d: %w", off, err)
		}
		if len(buf) == 0 {
			return fmt.Errorf("cannot read offsets log at %d: no batch below the end %d", off, end)
		}
		used, next, err := decodeBatches(buf, s.apply)
		if err != nil {
			return fmt.Errorf("cannot replay offsets log at %d: %w", next, err)
		}
		if used == 0 || next <= off {
			return fmt.Errorf("cannot replay offsets log at %d: no progress", off)
		}
		off = next
	}
	s.logger.Info("committed offsets loaded", "groups", len(s.groups), "offsets", s.live, "records", s.sinceSnapshot)
	return nil
}

// apply changes the map for one replayed or written record; s.mu held or single-threaded.
func (s *offsetStore) apply(r offsetRecord) {
	s.sinceSnapshot++
	g := s.groups[r.Group]
	if r.Value == nil {
		if g == nil {
			return
		}
		if _, ok := g[r.TopicPartition]; ok {
			delete(g, r.TopicPartition)
			s.live--
		}
		if len(g) == 0 {
			delete(s.groups, r.Group)
		}
		return
	}
	if g == nil {
		g = map[TopicPartition]OffsetValue{}
		s.groups[r.Group] = g
	}
	if _, ok := g[r.TopicPartition]; !ok {
		s.live++
	}
	g[r.TopicPartition] = *r.Value
}

// write appends recs as one batch and applies them, then waits for durability outside the
// lock.
func (s *offsetStore) write(ctx context.Context, recs []offsetRecord) error {
	if len(recs) == 0 {
		return nil
	}
	s.mu.Lock()
	s.buf = appendBatch(s.buf[:0], recs, s.now().UnixMilli())
	res, err := s.log.AppendNoWait(s.buf)
	if err != nil {
		s.mu.Unlock()
		// Retriable for clients, as Kafka answers when its offsets log cannot be written.
		return fmt.Errorf("cannot append to offsets log: %w (%w)", err, ErrCoordinatorNotAvailable)
	}
	for _, r := range recs {
		s.apply(r)
	}
	s.mu.Unlock()
	if err := s.log.WaitDurable(ctx, res.LastOffset); err != nil {
		return fmt.Errorf("cannot make offsets durable: %w (%w)", err, ErrCoordinatorNotAvailable)
	}
	return nil
}

func (s *offsetStore) commit(ctx context.Context, group string, offs map[TopicPartition]OffsetValue) error {
	recs := make([]offsetRecord, 0, len(offs))
	for tp, v := range offs {
		v := v
		recs = append(recs, offsetRecord{Group: group, TopicPartition: tp, Value: &v})
	}
	sortRecords(recs)
	return s.write(ctx, recs)
}

// deleteOffsets writes tombstones for tps of group (all of them when tps is nil).
func (s *offsetStore) deleteOffsets(ctx context.Context, group string, tps []TopicPartition) error {
	s.mu.Lock()
	var recs []offsetRecord
	g := s.groups[group]
	if tps == nil {
		for tp := range g {
			recs = append(recs, offsetRecord{Group: group, TopicPartition: tp})
		}
	} else {
		for _, tp := range tps {
			if _, ok := g[tp]; ok {
				recs = append(recs, offsetRecord{Group: group, TopicPartition: tp})
			}
		}
	}
	s.mu.Unlock()
	sortRecords(recs)
	return s.write(ctx, recs)
}

func sortRecords(recs []offsetRecord) {
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Topic != recs[j].Topic {
			return recs[i].Topic < recs[j].Topic
		}
		return recs[i].Partition < recs[j].Partition
	})
}

// fetch returns the committed offsets of group for tps, or all of them when tps is nil.
func (s *offsetStore) fetch(group string, tps []TopicPartition) []FetchedOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[group]
	var out []FetchedOffset
	if tps == nil {
		for tp, v := range g {
			out = append(out, FetchedOffset{tp, v})
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Topic != out[j].Topic {
				return out[i].Topic < out[j].Topic
			}
			return out[i].Partition < out[j].Partition
		})
		return out
	}
	for _, tp := range tps {
		v, ok := g[tp]
		if !ok {
			v = OffsetValue{Offset: -1, LeaderEpoch: -1}
		}
		out = append(out, FetchedOffset{tp, v})
	}
	return out
}

func (s *offsetStore) hasGroup(group string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.groups[group]) > 0
}

func (s *offsetStore) groupNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.groups))
	for g := range s.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

// lastCommitMs is the newest commit timestamp of group (0 if none).
func (s *offsetStore) lastCommitMs(group string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last int64
	for _, v := range s.groups[group] {
		last = max(last, v.CommitMs)
	}
	return last
}

// maybeCompact writes a snapshot of the live offsets and drops the log before it, when the
// records since the last snapshot far outnumber the live entries.
func (s *offsetStore) maybeCompact(ctx context.Context) error {
	s.mu.Lock()
	if s.sinceSnapshot < compactMinRecords || s.sinceSnapshot < 2*s.live {
		s.mu.Unlock()
		return nil
	}
	start := s.log.EndOffset()
	var recs []offsetRecord
	var buf []byte
	nowMs := s.now().UnixMilli()
	flush := func() {
		if len(recs) > 0 {
			buf = appendBatch(buf, recs, nowMs)
			recs = recs[:0]
		}
	}
	for _, g := range s.sortedGroupsLocked() {
		for tp, v := range s.groups[g] {
			v := v
			recs = append(recs, offsetRecord{Group: g, TopicPartition: tp, Value: &v})
			if len(recs) == snapshotChunkRecords {
				flush()
			}
		}
	}
	flush()
	var last int64 = -1
	if len(buf) > 0 {
		res, err := s.log.AppendNoWait(buf)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("cannot append offsets snapshot: %w", err)
		}
		start, last = res.BaseOffset, res.LastOffset
	}
	s.sinceSnapshot = s.live
	s.mu.Unlock()
	if last >= 0 {
		if err := s.log.WaitDurable(ctx, last); err != nil {
			return fmt.Errorf("cannot make offsets snapshot durable: %w", err)
		}
		if err := s.log.Sync(); err != nil { // the snapshot must be on disk before the old records go
			return fmt.Errorf("cannot sync offsets snapshot: %w", err)
		}
	}
	if err := s.log.DeleteRecordsBefore(start); err != nil {
		return fmt.Errorf("cannot drop offsets before snapshot: %w", err)
	}
	s.logger.Info("committed offsets compacted", "offsets", s.live, "log_start", start)
	return nil
}

func (s *offsetStore) sortedGroupsLocked() []string {
	names := make([]string, 0, len(s.groups))
	for g := range s.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

func (s *offsetStore) close() error { return s.log.Close() }
