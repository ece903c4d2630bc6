package stream

// The log cleaner's scheduling (Kafka's LogCleaner): every CleanerBackoff, the partitions of
// topics whose cleanup.policy holds compact are handed to CleanerThreads goroutines, which
// clean each one that is due (internal/log clean.go decides, from the topic's
// min.cleanable.dirty.ratio, min/max.compaction.lag.ms, delete.retention.ms and segment.ms).
// Transaction markers go only below the end offset of the producer-state snapshot on disk
// (snapshot.go), so that a restart, which resumes the producer state from that snapshot and
// scans the log after it, finds the end of every transaction the snapshot holds open; with no
// snapshot yet, none goes. The cleaner keeps each active producer's last batch (empty if need
// be), which a full rebuild reads its sequence and epoch from.
// The cleaners share one I/O throttle (CleanerIOBytesPerSecond) and run off the append path:
// a partition's appends never wait for its cleaning, only for the moment it swaps files.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yardmq/yard/internal/log"
)

const (
	// defaultCleanerThreads is Kafka's log.cleaner.threads.
	defaultCleanerThreads = 1
	// defaultCleanerBackoff is Kafka's log.cleaner.backoff.ms.
	defaultCleanerBackoff = 15 * time.Second
	// DefaultCleanerIOBytesPerSecond bounds the cleaners' reads and writes together. Kafka's
	// log.cleaner.io.max.bytes.per.second is unlimited by default; yard bounds it so that a
	// cleaning never takes the disk from producers and consumers.
	DefaultCleanerIOBytesPerSecond = 64 << 20
)

// CleanerStats counts what the cleaners did since the manager opened.
type CleanerStats struct {
	Passes         int64 // cleanings that replaced segments
	Segments       int64 // segments replaced
	RecordsRemoved int64
	BytesFreed     int64
	Errors         int64
}

type cleanerCounters struct {
	passes, segments, removed, freed, errors atomic.Int64
}

// CleanerStats returns the cleaners' counters.
func (m *Manager) CleanerStats() CleanerStats {
	c := &m.cleaned
	return CleanerStats{Passes: c.passes.Load(), Segments: c.segments.Load(), RecordsRemoved: c.removed.Load(),
		BytesFreed: c.freed.Load(), Errors: c.errors.Load()}
}

// cleanerLoop runs a cleaning round every CleanerBackoff until the manager closes.
func (m *Manager) cleanerLoop() {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	throttle := log.NewThrottle(m.cfg.CleanerIOBytesPerSecond)
	tick := time.NewTicker(m.cfg.CleanerBackoff)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
			m.cleanRound(ctx, throttle)
		}
	}
}

// cleanRound cleans every compacted partition that is due, CleanerThreads at a time.
func (m *Manager) cleanRound(ctx context.Context, throttle *log.Throttle) {
	work := make(chan *Partition)
	var wg sync.WaitGroup
	for range m.cfg.CleanerThreads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				m.cleanPartition(ctx, p, throttle)
			}
		}()
	}
	defer wg.Wait()
	defer close(work)
	for _, t := range m.Topics() {
		if !t.Config().Compact {
			continue
		}
		for _, p := range t.Partitions() {
			select {
			case work <- p:
			case <-ctx.Done():
				return
			}
		}
	}
}

func (m *Manager) cleanPartition(ctx context.Context, p *Partition, throttle *log.Throttle) {
	lso := p.LastStableOffset()
	if lso == 0 {
		return // nothing stable yet (an open transaction at the start)
	}
	p.mu.Lock()
	snap := p.snapshotEnd
	p.mu.Unlock()
	st, err := p.log.Clean(ctx, log.CleanConfig{Throttle: throttle, StableOffset: lso, Aborted: p.isAborted,
		Producers: p.lastOfProducers, LimitMarkers: true, MarkersBelow: max(snap, 0)})
	if err != nil {
		if !errors.Is(err, log.ErrClosed) && !errors.Is(err, context.Canceled) {
			m.cleaned.errors.Add(1)
			m.log.Warn("cleaning failed", "topic", p.Topic.Name, "partition", p.Index, "err", err)
		}
		return
	}
	if st.Cleaned {
		m.cleaned.passes.Add(1)
		m.cleaned.segments.Add(int64(st.Segments))
		m.cleaned.removed.Add(st.RecordsRemoved)
		m.cleaned.freed.Add(st.BytesBefore - st.BytesAfter)
	}
}

// lastOfProducers is the cleaner's view of the partition's active producers: the last offset
// of each one's last data batch (-1 when a marker bumped its epoch since) and its epoch.
func (p *Partition) lastOfProducers() map[int64]log.ProducerLast {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int64]log.ProducerLast, len(p.producers))
	for id, s := range p.producers {
		last := int64(-1)
		if len(s.batches) > 0 {
			last = s.batches[len(s.batches)-1].lastOffset
		}
		out[id] = log.ProducerLast{LastDataOffset: last, Epoch: s.epoch}
	}
	return out
}
