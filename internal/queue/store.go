package queue

import (
	"context"
)

// Store records a queue's messages outside memory. The queue calls every method except
// Close/Drop under its lock, in sequence order for Append; seq is the message's position,
// stable across requeues, which is what lets a log-structured store reclaim a segment once all
// its messages are settled. Durable queues use LogStore (on the log engine); transient queues
// use MemoryStore.
//
// Durability: Append returns a Waiter. The queue calls Append under its lock (cheap, keeps
// sequence order); the front end waits for durability (Waiter.Wait, outside every lock, so
// that concurrent publishers share one fsync) before it sends the publisher confirm.
type Store interface {
	// Append records a newly enqueued message at seq (which, for a paged store, is the
	// store's Next() at the time of the call).
	Append(seq uint64, m *Message) (Waiter, error)
	// Settle records that messages left the queue (acked, dropped, dead-lettered); sizes[i]
	// is the payload size of seqs[i] if that message is persistent, else 0 (see
	// Recovery.Bytes).
	Settle(seqs []uint64, sizes []uint64) error
	// Requeued records that the message at seq was delivered and returned count times in
	// all (x-delivery-count), so that the count survives a restart (Stored.Deliveries).
	Requeued(seq uint64, count int)
	// SettleRange records that the num messages from seq on that were never loaded into
	// memory left the queue (purge).
	SettleRange(from, num uint64) error
	// Delivered records that every message below through may have been delivered, so that
	// after a restart the unsettled ones among them are flagged redelivered.
	Delivered(through uint64)
	// Paged reports whether the store can give messages back (ReadFrom): only then may the
	// queue drop message bodies from memory.
	Paged() bool
	// Recovered describes what a previous run left: messages [From, Next) of which at most
	// Live are unsettled.
	Recovered() Recovery
	// ReadFrom returns unsettled messages at or after from, up to about maxBytes, and the
	// position after the last record it looked at. It may return none if from is not
	// readable yet (not yet durable); NotifyReadable then says when to retry.
	ReadFrom(from uint64, maxBytes int) (msgs []Stored, next uint64, passed uint64, err error)
	// NotifyReadable calls fn (on another goroutine) once the record at from is readable.
	NotifyReadable(from uint64, fn func())
	// Reclaim says that every message below before is settled: storage below it may go.
	Reclaim(before uint64)
	// Level returns the store of priority level n >= 1 of a priority queue (lane.go),
	// creating it if needed; the store owns it (Close and Drop include it). Level 0 is the
	// store itself.
	Level(n int) (Store, error)
	// Close releases the store at shutdown, keeping its data.
	Close() error
	// Drop releases the store and deletes its data (queue deleted).
	Drop() error
}

// Recovery is what a store recovered at open.
type Recovery struct {
	From, Next uint64
	Live       uint64 // upper bound of unsettled messages in [From, Next)
	// Bytes is the payload size (properties + body) of the unsettled persistent messages
	// in [From, Next): the ones a restart keeps (a message whose acknowledgement a crash
	// lost is kept, and counted). It is exact except that settlements written by earlier
	// builds (without sizes) make it larger than the truth, and that it is 0 while
	// the queue still holds messages written by an earlier build (without the cumulated
	// sizes, record.go).
	Bytes uint64
	// Levels lists the priority levels (>= 1) that hold data from a previous run.
	Levels []int
}

// Stored is a message read back from a store.
type Stored struct {
	Seq         uint64
	Msg         *Message
	Redelivered bool
	Deliveries  int // recorded x-delivery-count (Store.Requeued)
}

// Waiter waits until an appended message is durable. The zero Waiter is already durable.
type Waiter struct {
	l   durable
	off int64
	// f, if set, holds offset off in a write buffer (LogStore's append coalescing): Wait
	// writes it to the log first, or it would never become durable.
	f flusher
}

// flusher writes buffered appends through a log offset to the log.
type flusher interface {
	flushThrough(off int64) error
	// durableThrough reports, without waiting, whether offset off is written and durable.
	durableThrough(off int64) bool
}

// Pending reports whether Wait has anything to wait for.
func (w Waiter) Pending() bool { return w.l != nil }

// Check reports, without waiting, whether the message is durable already (Wait would return
// at once) and, if not, whether Wait will block for it: it is in a queue's log and not durable
// yet. For a stream's partition Check cannot tell, and reports neither. A publisher confirmer
// uses it to skip the waits that are over and to send the confirms it owes before it blocks.
func (w Waiter) Check() (durable, blocks bool) {
	switch {
	case w.l == nil:
		return true, false
	case w.f == nil:
		return false, false
	case w.f.durableThrough(w.off):
		return true, false
	}
	return false, true
}

// Wait returns once the message is durable per the log's sync policy.
func (w Waiter) Wait(ctx context.Context) error {
	if w.l == nil {
		return nil
	}
	if w.f != nil {
		if err := w.f.flushThrough(w.off); err != nil {
			return err
		}
	}
	return w.l.WaitDurable(ctx, w.off)
}

// MemoryStore keeps nothing: messages live only in the queue's memory.
type MemoryStore struct{}

func (MemoryStore) Append(uint64, *Message) (Waiter, error) { return Waiter{}, nil }
func (MemoryStore) Settle([]uint64, []uint64) error         { return nil }
func (MemoryStore) Requeued(uint64, int)                    {}
func (MemoryStore) SettleRange(uint64, uint64) error        { return nil }
func (MemoryStore) Delivered(uint64)                        {}
func (MemoryStore) Paged() bool                             { return false }
func (MemoryStore) Recovered() Recovery                     { return Recovery{From: 1, Next: 1} }
func (MemoryStore) ReadFrom(from uint64, _ int) ([]Stored, uint64, uint64, error) {
	return nil, from, 0, nil
}
func (MemoryStore) NotifyReadable(uint64, func()) {}
func (MemoryStore) Reclaim(uint64)                {}
func (MemoryStore) Level(int) (Store, error)      { return MemoryStore{}, nil }
func (MemoryStore) Close() error                  { return nil }
func (MemoryStore) Drop() error                   { return nil }

// durable is a log, or a partition over one, whose appends become durable.
type durable interface {
	WaitDurable(ctx context.Context, offset int64) error
}

// NewWaiter waits for offset of l: for front ends that append to a partition themselves
// (stream queues) and confirm through the same path as queue publishes.
func NewWaiter(l durable, offset int64) Waiter { return Waiter{l: l, off: offset} }
