package queue

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// drain takes n messages as deliveries (basic.get), spread over d of fake time.
func drain(t *testing.T, q *Queue, clock *fakeClock, n int, d time.Duration) {
	t.Helper()
	for range n {
		if _, _, ok, err := q.Get(true); !ok || err != nil {
			t.Fatalf("get: %v %v", ok, err)
		}
		clock.add(d / time.Duration(n))
	}
}

// TestPaceOnlyFastDrainingQueues: a queue asks its publishers to wait only while it has
// consumers that drain it at paceMinDrainRate or more and its backlog is over the limit; a
// queue without consumers, or with slow ones, is a buffer and never paces.
func TestPaceOnlyFastDrainingQueues(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	q := New("q", Options{Now: clock.now})
	body := make([]byte, 1021) // 1 KiB with the properties
	for range 3000 {
		if _, err := q.Publish(&Message{Properties: []byte{1, 2, 3}, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 1 << 20
	if q.Pace(limit) {
		t.Fatal("paced without consumers")
	}
	idle := &testConsumer{} // takes nothing: its prefetch is full
	if err := q.Consume(ConsumerSpec{Tag: "c", Consumer: idle}); err != nil {
		t.Fatal(err)
	}
	q.Pace(limit)                                // starts the rate window
	drain(t, q, clock, 50, 200*time.Millisecond) // 250 msgs/s: slow consumers
	if q.Pace(limit) {
		t.Fatal("paced a queue drained at 250 msgs/s")
	}
	drain(t, q, clock, 500, 100*time.Millisecond) // 5,000 msgs/s
	if !q.Pace(limit) {
		t.Fatal("not paced: fast consumers, backlog over the limit")
	}
	if q.Pace(0) {
		t.Fatal("paced with pacing off")
	}
	// A paced publisher waits until the backlog is under half the limit...
	done := make(chan struct{})
	go func() {
		q.WaitDrained(limit, time.Minute)
		close(done)
	}()
	for {
		q.mu.Lock()
		waiting := q.flow.drained != nil
		q.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("WaitDrained returned with the backlog still over half the limit")
	default:
	}
	drain(t, q, clock, 3000-550-400, time.Second) // 400 KiB left: under half of 1 MiB
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitDrained did not return once the backlog was under half the limit")
	}
	// ...and never longer than its bound.
	for range 2000 {
		if _, err := q.Publish(&Message{Properties: []byte{1, 2, 3}, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	q.WaitDrained(limit, 20*time.Millisecond)
	if time.Since(start) > 10*time.Second {
		t.Fatal("WaitDrained outlived its bound")
	}
}
