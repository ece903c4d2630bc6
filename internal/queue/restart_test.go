package queue

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// crash closes a store's logs as a killed process would leave them: no final flush of its
// buffers. Written data survives, as the page cache keeps it across a kill -9.
func crash(s *LogStore) {
	s.msgs.Close()
	s.acks.Close()
}

// settlementsWritten waits until the store's buffered settlements and counts are written.
func settlementsWritten(t *testing.T, s *LogStore) {
	t.Helper()
	waitFor(t, "buffered settlements to be written", func() bool {
		s.pmu.Lock()
		defer s.pmu.Unlock()
		return len(s.pending) == 0 && len(s.counts) == 0 && len(s.purged) == 0 && s.delivered == 0
	})
	s.amu.Lock() // and a write that took them is finished
	s.amu.Unlock()
}

type deadLetters struct {
	mu  sync.Mutex
	got []DeadLetter
}

func (d *deadLetters) add(dl []DeadLetter) {
	d.mu.Lock()
	d.got = append(d.got, dl...)
	d.mu.Unlock()
}

func (d *deadLetters) reasons() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, dl := range d.got {
		out = append(out, dl.Reason+":"+string(dl.Msg.Body))
	}
	return out
}

// getOne takes the only ready message, waiting for it to become readable after a restart.
func getOne(t *testing.T, q *Queue) Delivery {
	t.Helper()
	var d Delivery
	waitFor(t, "a ready message", func() bool {
		var ok bool
		var err error
		d, _, ok, err = q.Get(false)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	return d
}

// A poison message's delivery count continues across restarts (clean and crashed), and
// x-delivery-limit dead-letters it at the right attempt.
func TestDeliveryCountSurvivesRestart(t *testing.T) {
	t.Parallel()
	for _, crashed := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crashed), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var dl deadLetters
			args := map[string]any{"x-delivery-limit": int64(4), "x-dead-letter-exchange": "dlx"}
			open := func() (*Queue, *LogStore) {
				s := openStore(t, dir, 0)
				return New("q", Options{Durable: true, Store: s, Args: args, DeadLetter: dl.add}), s
			}
			q, s := open()
			pub(t, q, "other", true)
			pub(t, q, "poison", true)
			first := getOne(t, q)
			q.Ack(first.ID) // settled: its count must not matter
			attempt := 0
			for restart := range 2 {
				for range 2 {
					d := getOne(t, q)
					if string(d.Message.Body) != "poison" || d.DeliveryCount != attempt {
						t.Fatalf("restart %d: got %q with delivery count %d, want poison with %d", restart, d.Message.Body, d.DeliveryCount, attempt)
					}
					q.Requeue(d.ID)
					attempt++
				}
				if crashed {
					settlementsWritten(t, s)
					crash(s)
				} else if err := q.Close(); err != nil {
					t.Fatal(err)
				}
				q, s = open()
			}
			defer q.Close()
			// Four returns so far: the fifth delivery is the last one the limit allows.
			d := getOne(t, q)
			if d.DeliveryCount != 4 {
				t.Fatalf("after two restarts: delivery count %d, want 4", d.DeliveryCount)
			}
			if got := dl.reasons(); len(got) != 0 {
				t.Fatalf("dead-lettered too early: %v", got)
			}
			q.Requeue(d.ID)
			if got := fmt.Sprint(dl.reasons()); got != "[delivery_limit:poison]" {
				t.Fatalf("dead letters %s, want the poison message for delivery_limit", got)
			}
			if r, u, _ := q.Counts(); r != 0 || u != 0 {
				t.Fatalf("queue holds %d ready %d unacked after dead-lettering", r, u)
			}
		})
	}
}

// Recovery.Bytes is the payload of the persistent messages a restart keeps: acks, purged
// ranges and transient messages are not counted.
func TestRecoveredBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	var want uint64
	size := func(i int) int { return 100 + 37*i }
	for i := range 20 {
		m := &Message{Properties: []byte{1, 2, 3}, Body: make([]byte, size(i)), Persistent: i%5 != 4}
		if _, err := s.Append(uint64(i), m); err != nil {
			t.Fatal(err)
		}
		settled := i == 0 || i == 7 || i >= 10 && i < 13 // 10..12: purged below
		if !settled && m.Persistent {
			want += uint64(m.Size())
		}
	}
	if err := s.Settle([]uint64{7, 0}, []uint64{uint64(size(7) + 3), uint64(size(0) + 3)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleRange(10, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 0)
	if got := s.Recovered().Bytes; got != want {
		t.Fatalf("recovered bytes %d, want %d", got, want)
	}
	// The count continues across the reopen: one more message, one more restart.
	if _, err := s.Append(20, &Message{Body: make([]byte, 500), Persistent: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 0)
	defer s.Close()
	if got := s.Recovered().Bytes; got != want+500 {
		t.Fatalf("after a second reopen: recovered bytes %d, want %d", got, want+500)
	}
}

// x-max-length-bytes counts the messages a restart recovered.
func TestMaxLengthBytesAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := map[string]any{"x-max-length-bytes": int64(4500), "x-overflow": OverflowRejectPublish}
	open := func() *Queue {
		return New("q", Options{Durable: true, Store: openStore(t, dir, 0), Args: args})
	}
	q := open()
	body := make([]byte, 997) // + 3 bytes of properties: 1000 bytes each
	for i := range 3 {
		pub(t, q, string(body[:997-len(fmt.Sprint(i))])+fmt.Sprint(i), true)
	}
	pub(t, q, string(body), false) // transient: gone after the restart
	d := getOne(t, q)
	q.Ack(d.ID)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open()
	defer q.Close()
	// 2000 bytes recovered: two more fit, the next would exceed 4500.
	pub(t, q, string(body), true)
	pub(t, q, string(body), true)
	_, err := q.Publish(&Message{Properties: []byte{0x10, 0, 2}, Body: body, Persistent: true})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("publish over the byte limit after a restart: %v, want ErrRejected", err)
	}
	// Draining the recovered messages frees their bytes.
	for range 2 {
		d := getOne(t, q)
		q.Ack(d.ID)
	}
	if _, err := q.Publish(&Message{Properties: []byte{0x10, 0, 2}, Body: body, Persistent: true}); err != nil {
		t.Fatalf("publish after draining 2000 bytes: %v", err)
	}
}

// A consumer that nacks a message with requeue in a loop (the poison message loop that
// x-delivery-limit exists for) on a queue without x-delivery-limit must not grow the
// settlement log: nothing trims an entry naming the message at the head of the queue, so one
// count entry per flush would pile up for as long as the loop runs.
func TestRequeueLoopWithoutLimitWritesNoCounts(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), 0)
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	pub(t, q, "poison", true)
	d := getOne(t, q) // writes the delivered-through mark
	q.Requeue(d.ID)
	settlementsWritten(t, s)
	before := s.acks.EndOffset()
	for i := range 50 {
		d := getOne(t, q)
		if d.DeliveryCount != i+1 {
			t.Fatalf("delivery count %d, want %d", d.DeliveryCount, i+1)
		}
		q.Requeue(d.ID)
		settlementsWritten(t, s)
	}
	if grew := s.acks.EndOffset() - before; grew != 0 {
		t.Fatalf("50 requeues without x-delivery-limit wrote %d settlement entries, want 0", grew)
	}
}
