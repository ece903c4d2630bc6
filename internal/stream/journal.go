package stream

// The produce journal (Config.JournalDir, the broker's --kafka-journal): one node-wide
// log.Journal (internal/log/journal.go, its format documented there) that makes appends to
// many partitions durable with one fsync. Without it a produce request to six partitions
// waits for six partition fsyncs; with it, for one journal group commit shared by every
// partition and every request in the round.
//
// Write path, under the partition's lock (so that a partition's entries are journaled in its
// own order): the batch is appended to the partition's log (policy log.SyncJournal: no fsync),
// then journaled as (id, first offset, batch). Every append to a journaled partition goes
// through here: produced batches, AppendInternal and transaction markers; a marker left out
// would shift the offsets at which later entries are replayed. The id is the topic's ID (16
// bytes) and the partition (int32, big-endian): names are reused when a topic is deleted and
// created again, IDs never.
//
// Durability and visibility: Partition.WaitDurable waits for the journal's group commit of
// the partition's entry covering the offset. Readers see what is durable, as under the
// default policy without the journal (the high watermark of a partition under
// log.SyncAlways is its durable end): the partition's high watermark moves (log.MarkDurable)
// once the journal has fsynced the entries below it, from the waiter or, for appends nobody
// waits for (acks=0 and 1), from the journal's follower goroutine (follow).
//
// Partitions are fsynced in the background (flushLoop, every journalFlushInterval): the
// partitions written since the last flush are fsynced, then the journal segments wholly
// below the journal end as of the flush's start are dropped (log.Journal.Release).
//
// Recovery (Manager.Open): the partitions are opened, the journal replayed (an entry at or
// past its partition's end is appended again; entries below the end are there already;
// entries of topics no longer in the catalog are skipped), the replayed partitions fsynced,
// and only then is the producer state rebuilt from the logs, so that an idempotent producer's
// retry of a batch acknowledged before the crash is recognised as a duplicate.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/ratelog"
)

const (
	// journalFlushInterval: how often journaled partitions are fsynced and the journal
	// trimmed; journalFlushBytes: or sooner, once this much was journaled since the last
	// flush, so that each flush's fsyncs write back little at a time (a large write-back
	// delays the journal's own fsyncs, and so every acknowledgement, while it lasts).
	journalFlushInterval = 500 * time.Millisecond
	journalFlushBytes    = 8 << 20
	journalIDLen         = 16 + 4
)

// journalPoint is one journal entry of a partition not yet known durable: the partition's log
// end after the batch and the entry's journal offset.
type journalPoint struct {
	end  int64
	joff int64
}

// produceJournal is the Manager's journal; see the top of the file.
type produceJournal struct {
	j *log.Journal

	// mu makes appending an entry and listing it (Partition.jq, pending, flush) one step, so
	// that whoever reads Durable or End under mu knows every entry below it.
	mu        sync.Mutex
	pending   map[*Partition]struct{} // partitions with points in jq
	flush     map[*Partition]struct{} // partitions written since the last flush
	unflushed int                     // bytes journaled since the last flush started
	kick      chan struct{}           // buffered 1: asks flushLoop for a flush now

	stop chan struct{}
	done chan struct{}
}

// journalID is the entry id of partition i of the topic with the given ID.
func journalID(dst []byte, topic catalog.UUID, i int32) []byte {
	dst = append(dst, topic[:]...)
	return binary.BigEndian.AppendUint32(dst, uint32(i))
}

// journaled reports whether p's appends go through the journal.
func (p *Partition) journaled() bool { return p.Topic.m.journal != nil && !p.Topic.Internal }

// Journaled reports whether p's appends are made durable by the produce journal, whose
// group commits cover every journaled partition at once.
func (p *Partition) Journaled() bool { return p.journaled() }

// appendLogLocked appends batch to p's log, and journals it when p is journaled. p.mu held.
func (p *Partition) appendLogLocked(batch []byte) (log.AppendResult, error) {
	res, err := p.log.AppendCheckedNoWait(batch)
	if err != nil || !p.journaled() {
		return res, err
	}
	pj := p.Topic.m.journal
	var idb [journalIDLen]byte
	id := journalID(idb[:0], p.Topic.ID, p.Index)
	pj.mu.Lock()
	joff, jerr := pj.j.Append(id, res.BaseOffset, batch, p.Topic.m.cfg.Now().UnixMilli())
	if jerr == nil {
		if len(p.jq) == 0 {
			pj.pending[p] = struct{}{}
		}
		p.jq = append(p.jq, journalPoint{end: res.LastOffset + 1, joff: joff})
		pj.flush[p] = struct{}{}
		if pj.unflushed += len(batch); pj.unflushed >= journalFlushBytes {
			select {
			case pj.kick <- struct{}{}:
			default:
			}
		}
	}
	pj.mu.Unlock()
	if jerr != nil {
		// The batch is in the partition's log but not in the journal: make it durable there
		// (a later replay starts past it). If even that fails, the log refuses appends.
		if err := p.log.Sync(); err != nil {
			return log.AppendResult{}, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, errors.Join(jerr, err))
		}
		p.Topic.m.log.Warn("journal append failed; the partition was fsynced instead", "topic", p.Topic.Name, "partition", p.Index, "err", jerr)
	}
	return res, nil
}

// waitJournaled is WaitDurable for a journaled partition.
func (p *Partition) waitJournaled(ctx context.Context, pj *produceJournal, offset int64) error {
	pj.mu.Lock()
	i := sort.Search(len(p.jq), func(i int) bool { return p.jq[i].end > offset })
	var pt journalPoint
	found := i < len(p.jq)
	if found {
		pt = p.jq[i]
	}
	pj.mu.Unlock()
	if !found {
		// Known durable already (or fsynced in the partition itself), if it was appended.
		if end := p.log.EndOffset(); offset >= end {
			return fmt.Errorf("cannot wait for offset %d of %s-%d: %w (log end %d)", offset, p.Topic.Name, p.Index, log.ErrOffsetOutOfRange, end)
		}
		return nil
	}
	if err := pj.j.WaitDurable(ctx, pt.joff); err != nil {
		return fmt.Errorf("cannot make %s-%d durable: %w", p.Topic.Name, p.Index, err)
	}
	p.log.MarkDurable(pt.end)
	return nil
}

// follow moves the high watermarks of the journaled partitions as the journal's group
// commits make their entries durable, and drops the points it passed.
func (pj *produceJournal) follow() {
	var marks []journalPoint
	var parts []*Partition
	for {
		ch := pj.j.Changed()
		pj.mu.Lock()
		durable := pj.j.Durable()
		marks, parts = marks[:0], parts[:0]
		for p := range pj.pending {
			n := sort.Search(len(p.jq), func(i int) bool { return p.jq[i].joff >= durable })
			if n == 0 {
				continue
			}
			marks = append(marks, p.jq[n-1])
			parts = append(parts, p)
			p.jq = p.jq[n:]
			if len(p.jq) == 0 {
				p.jq = nil
				delete(pj.pending, p)
			}
		}
		pj.mu.Unlock()
		for i, p := range parts {
			p.log.MarkDurable(marks[i].end)
		}
		clear(parts)
		select {
		case <-ch:
		case <-pj.stop:
			return
		}
	}
}

// flushLoop fsyncs the partitions written to and trims the journal every
// journalFlushInterval or journalFlushBytes, whichever comes first.
func (m *Manager) flushLoop() {
	pj := m.journal
	defer close(pj.done)
	t := time.NewTicker(journalFlushInterval)
	defer t.Stop()
	warn := ratelog.New(m.log, 0) // a failing partition would otherwise log twice a second

	for {
		select {
		case <-pj.stop:
			return
		case <-t.C:
		case <-pj.kick:
		}
		if err := m.flushJournal(); err != nil {
			warn.Warn("journal flush", "cannot flush journaled partitions; the journal keeps their entries", "err", err)
		}
	}
}

// flushJournal fsyncs every partition written since the last flush, then drops the journal
// segments below the journal's end as of the start. On an error nothing is dropped and the
// partitions that failed stay listed.
func (m *Manager) flushJournal() error {
	pj := m.journal
	pj.mu.Lock()
	end, dirty := pj.j.End(), pj.flush
	pj.flush, pj.unflushed = map[*Partition]struct{}{}, 0
	pj.mu.Unlock()
	var errs []error
	for p := range dirty {
		err := p.log.Sync()
		if err == nil || errors.Is(err, log.ErrClosed) { // closed: its topic was deleted
			continue
		}
		errs = append(errs, fmt.Errorf("cannot fsync %s-%d: %w", p.Topic.Name, p.Index, err))
		pj.mu.Lock()
		pj.flush[p] = struct{}{}
		pj.mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return pj.j.Release(end)
}

// openJournal opens the journal in m.cfg.JournalDir and replays it into the partitions (see
// the top of the file); the producer state is rebuilt afterwards by the caller. With
// m.cfg.Journal off, a journal left by an earlier run is replayed all the same, then closed.
func (m *Manager) openJournal() (*log.Journal, error) {
	j, err := log.OpenJournal(m.cfg.JournalDir, log.Options{SyncPolicy: log.SyncAlways, FS: m.cfg.FS,
		FileCache: m.cfg.FileCache, SyncObserver: m.cfg.SyncObserver, Logger: m.log, Now: m.cfg.Now})
	if err != nil {
		return nil, err
	}
	if err := m.replayJournal(j); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

// replayJournal appends again every entry at or past its partition's end, fsyncs the
// partitions it appended to and releases the journal.
func (m *Manager) replayJournal(j *log.Journal) error {
	// Every partition the journal names is fsynced before the journal is released: after a
	// process crash, what it holds below its end may still be in the page cache only.
	touched := map[*Partition]bool{}
	restored, skipped := 0, 0
	err := j.Replay(func(id []byte, first int64, batch []byte) error {
		if len(id) != journalIDLen {
			return fmt.Errorf("%w: entry id of %d bytes", log.ErrCorruptJournal, len(id))
		}
		t, ok := m.byID[catalog.UUID(id[:16])]
		i := int32(binary.BigEndian.Uint32(id[16:]))
		var p *Partition
		if ok {
			p = t.Partition(i)
		}
		if p == nil {
			skipped++ // a topic deleted since (its partitions went with it)
			return nil
		}
		touched[p] = true
		end := p.log.EndOffset()
		if first < end {
			return nil
		}
		if first > end {
			m.log.Error("journal entry past its partition's end; appended at the end", "topic", t.Name, "partition", i, "entry", first, "end", end)
		}
		if _, err := p.log.AppendCheckedNoWait(append([]byte(nil), batch...)); err != nil {
			return fmt.Errorf("cannot replay journal into %s-%d: %w", t.Name, i, err)
		}
		restored++
		return nil
	})
	if err != nil {
		return err
	}
	for p := range touched {
		if err := p.log.Sync(); err != nil {
			return fmt.Errorf("cannot fsync %s-%d after replaying the journal: %w", p.Topic.Name, p.Index, err)
		}
	}
	if restored > 0 || skipped > 0 {
		m.log.Info("journal replayed", "batches_restored", restored, "entries_of_deleted_topics", skipped)
	}
	// Everything in the journal is now in fsynced partitions (or belonged to deleted ones).
	return j.Release(j.End())
}
