package group

// The offsets journal: one log (<data-dir>/offsets-journal/, internal/datadir) that makes
// commits durable with one fsync however many partitions of __consumer_offsets they went to.
//
// Why: a group's records belong in its own partition (Kafka's layout, which readers of the
// topic expect), and commits of concurrent groups land in different partitions. Waiting for
// each partition's fsync would cost one fsync per partition touched instead of one shared
// fsync, which on this kind of disk made concurrent commits about twice as slow as the
// one-log store of earlier versions. So every batch the coordinator writes is appended to the
// journal, and a commit waits for the journal's group commit only; the batch is queued for
// its partition. Every offsetsFlushInterval the queued batches are written to their
// partitions (one write per partition for many commits) and each partition written to is
// fsynced once, after which the journal's segments that only hold what they made durable are
// dropped. Readers of __consumer_offsets see a commit once it is written there.
//
// The journal is a log.Journal (its format is documented there) whose ids are the partition
// of __consumer_offsets as a big-endian int32, so an entry's record is:
//
//	key   int32 partition of __consumer_offsets | int64 the batch's first offset there
//	value the batch as appended to that partition
//
// Recovery, before the partitions are replayed: each journal entry whose first offset is at
// or past its partition's end (the partition lost it in the crash) is appended again, in
// journal order, which is each partition's own order; entries below the end are already
// there. Then the partitions are fsynced and the journal emptied of what they hold.
//
// Every append to a partition goes through the journal, so re-appended entries land at the
// offsets they had. Transaction markers are not journaled: before one is written, the queued
// batches of its partition are, and after it the partition is fsynced, which makes everything
// before it durable there.

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/log"
)

const (
	// offsetsFlushInterval: how often queued batches are written to their partitions, those
	// fsynced and the journal trimmed: how long, at most, a reader of __consumer_offsets
	// waits to see a commit.
	offsetsFlushInterval = 200 * time.Millisecond
	journalSegmentBytes  = 8 << 20
)

// journal is the offsets journal. mu orders appends and guards dirty and buf: an entry is in
// the journal only after its partition append, and dirty says which partitions hold entries
// that no partition fsync has covered yet.
type journal struct {
	log *log.Journal

	mu    sync.Mutex
	dirty map[int]bool
}

func openJournal(dir string, opts log.Options) (*journal, error) {
	opts.SegmentBytesMax = journalSegmentBytes
	l, err := log.OpenJournal(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open offsets journal: %w", err)
	}
	return &journal{log: l, dirty: map[int]bool{}}, nil
}

// append journals batch, which went to partition part at first; it returns the journal
// offset to wait for.
func (j *journal) append(part int, first int64, batch []byte, nowMs int64) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	off, err := j.log.Append(binary.BigEndian.AppendUint32(nil, uint32(part)), first, batch, nowMs)
	if err != nil {
		return -1, fmt.Errorf("cannot append to offsets journal: %w", err)
	}
	j.dirty[part] = true
	return off, nil
}

func (j *journal) wait(ctx context.Context, offset int64) error {
	return j.log.WaitDurable(ctx, offset)
}

// flush writes the queued batches of the partitions that journal entries went to since the
// last flush and fsyncs those partitions, then drops the journal segments wholly below what
// was journaled when it started. On an error nothing is dropped and the partitions stay
// dirty.
func (s *offsetStore) flush() error {
	j := s.journal
	j.mu.Lock()
	dirty, end := j.dirty, j.log.End()
	j.dirty = map[int]bool{}
	j.mu.Unlock()
	redirty := func() {
		j.mu.Lock()
		for p := range dirty {
			j.dirty[p] = true
		}
		j.mu.Unlock()
	}
	for part := range dirty {
		sh := s.shards[part]
		sh.mu.Lock()
		err := sh.writeQueuedLocked(s.logger)
		sh.mu.Unlock()
		if err == nil {
			err = sh.p.Sync()
		}
		if err != nil {
			redirty()
			return fmt.Errorf("cannot flush __consumer_offsets-%d: %w", part, err)
		}
	}
	if err := j.log.Release(end); err != nil {
		return fmt.Errorf("cannot trim offsets journal: %w", err)
	}
	return nil
}

// recoverJournal appends again what the partitions lost of the journal (see the top of the
// file), then flushes.
func (s *offsetStore) recoverJournal() error {
	j := s.journal
	restored := 0
	err := j.log.Replay(func(id []byte, first int64, batch []byte) error {
		if len(id) != 4 {
			return fmt.Errorf("%w: journal entry id of %d bytes", errCorruptRecord, len(id))
		}
		part := int(binary.BigEndian.Uint32(id))
		if part >= len(s.shards) {
			return fmt.Errorf("%w: journal entry for partition %d of %d", errCorruptRecord, part, len(s.shards))
		}
		p := s.shards[part].p
		pend := p.EndOffset()
		if first < pend {
			return nil
		}
		if first > pend {
			s.logger.Warn("offsets journal entry past its partition's end; appended at the end", "partition", part, "entry", first, "end", pend)
		}
		if _, err := p.AppendInternal(append([]byte(nil), batch...)); err != nil {
			return err
		}
		j.dirty[part] = true
		restored++
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot replay offsets journal: %w", err)
	}
	if restored > 0 {
		s.logger.Info("offsets journal: batches restored to __consumer_offsets", "batches", restored)
	}
	if err := s.flush(); err != nil {
		return err
	}
	for _, sh := range s.shards {
		sh.next = sh.p.EndOffset()
	}
	return nil
}

// flushLoop flushes every offsetsFlushInterval until stop closes, and once more then.
func (s *offsetStore) flushLoop(stop <-chan struct{}, logger interface{ Warn(string, ...any) }) {
	t := time.NewTicker(offsetsFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			if err := s.flush(); err != nil {
				logger.Warn("cannot flush __consumer_offsets at close", "err", err)
			}
			return
		case <-t.C:
			if err := s.flush(); err != nil {
				logger.Warn("cannot flush __consumer_offsets", "err", err)
			}
		}
	}
}
