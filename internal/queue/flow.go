package queue

// Consumer-paced publishing. When a queue's consumers drain it fast but slower than its
// publishers fill it, the backlog grows, spills to disk, and every message then waits behind
// it and is read back from the log: consumer latency grows without bound and, on a machine
// whose CPU the clients share, fewer messages are delivered, not more. The queue then asks
// its publishers to wait (Pace, WaitDrained) until the backlog is back under half the limit.
//
// Only fast-draining queues are paced: a queue whose consumers settle fewer than
// paceMinDrainRate messages a second (the seed's drivers working through routes one at a
// time), or that has no consumers at all, is a buffer, and its backlog is what it is for. A
// publisher never waits longer than the caller's bound, so consumers that stall cannot stop
// it for good.

import (
	"time"
)

const (
	// paceMinDrainRate: deliveries per second below which a queue is never paced.
	paceMinDrainRate = 1000
	// paceRateWindow: how often the drain rate is sampled.
	paceRateWindow = 100 * time.Millisecond
)

// flowState is the pacing state of a queue, guarded by its mu.
type flowState struct {
	delivered  uint64    // deliveries so far
	sampleAt   time.Time // start of the current rate window
	sampleOf   uint64    // delivered at sampleAt
	rate       float64   // deliveries per second over the last full window
	drained    chan struct{}
	drainBelow int64 // backlog under which drained is closed
}

// backlogBytesLocked is the payload of the ready messages, in memory and on disk.
func (q *Queue) backlogBytesLocked() int64 {
	b := q.readyBytes
	for _, l := range q.lanes {
		b += l.diskBytes
	}
	return b
}

// drainRateLocked returns the deliveries per second of the last full sampling window.
func (q *Queue) drainRateLocked() float64 {
	f := &q.flow
	now := q.now()
	if f.sampleAt.IsZero() {
		f.sampleAt, f.sampleOf = now, f.delivered
	} else if d := now.Sub(f.sampleAt); d >= paceRateWindow {
		f.rate = float64(f.delivered-f.sampleOf) / d.Seconds()
		f.sampleAt, f.sampleOf = now, f.delivered
	}
	return f.rate
}

// Pace reports whether a publisher should wait before publishing more to this queue: it has
// consumers draining it fast and a backlog over limit bytes. limit <= 0 disables pacing.
func (q *Queue) Pace(limit int64) bool {
	if limit <= 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.consumers) > 0 && q.backlogBytesLocked() > limit && q.drainRateLocked() >= paceMinDrainRate
}

// WaitDrained waits until the backlog is under half of limit, at most bound.
func (q *Queue) WaitDrained(limit int64, bound time.Duration) {
	q.mu.Lock()
	if q.backlogBytesLocked() < limit/2 || q.deleted {
		q.mu.Unlock()
		return
	}
	f := &q.flow
	if f.drained == nil {
		f.drained = make(chan struct{})
	}
	f.drainBelow = max(f.drainBelow, limit/2)
	ch := f.drained
	q.mu.Unlock()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// signalDrainedLocked wakes paced publishers once the backlog is under their mark.
func (q *Queue) signalDrainedLocked() {
	f := &q.flow
	if f.drained != nil && (q.backlogBytesLocked() < f.drainBelow || q.deleted) {
		close(f.drained)
		f.drained, f.drainBelow = nil, 0
	}
}
