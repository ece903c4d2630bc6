package queue

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// testConsumer takes up to capacity deliveries until told it has room again.
type testConsumer struct {
	mu        sync.Mutex
	capacity  int
	got       []Delivery
	cancelled []string
}

func (c *testConsumer) TryDeliver(d Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.capacity == 0 {
		return false
	}
	c.capacity--
	c.got = append(c.got, d)
	return true
}

func (c *testConsumer) Cancelled(q *Queue, tag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelled = append(c.cancelled, tag)
}

func (c *testConsumer) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		s := string(d.Message.Body)
		if d.Redelivered {
			s += "*"
		}
		out = append(out, s)
	}
	return out
}

func publish(t *testing.T, q *Queue, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := q.Publish(&Message{Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRoundRobinAndPrefetch(t *testing.T) {
	t.Parallel()
	q := New("q", Options{})
	a, b := &testConsumer{capacity: 2}, &testConsumer{capacity: 2}
	if err := q.Consume(ConsumerSpec{Tag: "a", Consumer: a}); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(ConsumerSpec{Tag: "b", Consumer: b}); err != nil {
		t.Fatal(err)
	}
	publish(t, q, "1", "2", "3", "4", "5")
	if fmt.Sprint(a.bodies(), b.bodies()) != "[1 3] [2 4]" {
		t.Fatalf("dispatch %v %v", a.bodies(), b.bodies())
	}
	if r, u, c := q.Counts(); r != 1 || u != 4 || c != 2 {
		t.Fatalf("counts %d %d %d", r, u, c)
	}
	a.mu.Lock()
	a.capacity++
	a.mu.Unlock()
	q.Ack(a.got[0].ID)
	if fmt.Sprint(a.bodies()) != "[1 3 5]" {
		t.Fatalf("after ack %v", a.bodies())
	}
}

func TestRequeueOriginalPosition(t *testing.T) {
	t.Parallel()
	q := New("q", Options{})
	publish(t, q, "1", "2", "3", "4")
	d1, _, _, _ := q.Get(false)
	d2, _, _, _ := q.Get(false)
	q.Requeue(d2.ID)
	q.Requeue(d1.ID)
	var got []string
	for {
		d, _, ok, err := q.Get(true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprint(string(d.Message.Body), " ", d.Redelivered))
	}
	if fmt.Sprint(got) != "[1 true 2 true 3 false 4 false]" {
		t.Fatalf("order %v", got)
	}
}

func TestPriorityConsumers(t *testing.T) {
	t.Parallel()
	q := New("q", Options{})
	low, high := &testConsumer{capacity: 10}, &testConsumer{capacity: 2}
	_ = q.Consume(ConsumerSpec{Tag: "low", Consumer: low})
	_ = q.Consume(ConsumerSpec{Tag: "high", Priority: 5, Consumer: high})
	publish(t, q, "1", "2", "3")
	if fmt.Sprint(high.bodies(), low.bodies()) != "[1 2] [3]" {
		t.Fatalf("priority dispatch %v %v", high.bodies(), low.bodies())
	}
}

func TestExclusiveConsumer(t *testing.T) {
	t.Parallel()
	q := New("q", Options{})
	a, b := &testConsumer{}, &testConsumer{}
	if err := q.Consume(ConsumerSpec{Tag: "a", Exclusive: true, Consumer: a}); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(ConsumerSpec{Tag: "b", Consumer: b}); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("second consumer: %v", err)
	}
	q.Cancel("a", a)
	if err := q.Consume(ConsumerSpec{Tag: "b", Consumer: b}); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(ConsumerSpec{Tag: "c", Exclusive: true, Consumer: a}); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("exclusive over existing: %v", err)
	}
}

func TestDeleteConditionsAndNotify(t *testing.T) {
	t.Parallel()
	q := New("q", Options{AutoDelete: true})
	c := &testConsumer{}
	_ = q.Consume(ConsumerSpec{Tag: "c", Consumer: c})
	publish(t, q, "x")
	if _, err := q.Delete(true, false); !errors.Is(err, ErrInUse) {
		t.Fatalf("if-unused: %v", err)
	}
	if _, err := q.Delete(false, true); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("if-empty: %v", err)
	}
	if n := q.Purge(); n != 1 {
		t.Fatalf("purged %d", n)
	}
	if n, err := q.Delete(false, false); err != nil || n != 0 {
		t.Fatalf("delete %d %v", n, err)
	}
	if fmt.Sprint(c.cancelled) != "[c]" {
		t.Fatalf("cancel notices %v", c.cancelled)
	}
	if _, err := q.Publish(&Message{}); !errors.Is(err, ErrDeleted) {
		t.Fatalf("publish after delete: %v", err)
	}
	q2 := New("q2", Options{AutoDelete: true})
	_ = q2.Consume(ConsumerSpec{Tag: "c", Consumer: c})
	if !q2.Cancel("c", c) {
		t.Fatal("auto-delete not reported after last consumer left")
	}
}

// TestConcurrentWorkQueue is the seed's work queue in miniature under the race detector:
// competing consumers with prefetch 1, one requeueing everything it holds; every message is
// settled exactly once.
func TestConcurrentWorkQueue(t *testing.T) {
	t.Parallel()
	const n = 2000
	q := New("q", Options{})
	var wg sync.WaitGroup
	acked := make(chan string, n)
	for i := 0; i < 3; i++ {
		c := &chanConsumer{in: make(chan Delivery, 1)}
		_ = q.Consume(ConsumerSpec{Tag: fmt.Sprint(i), Consumer: c})
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for d := range c.in {
				if i == 0 && !d.Redelivered {
					c.free(q)
					q.Requeue(d.ID)
					continue
				}
				c.free(q)
				q.Ack(d.ID)
				acked <- string(d.Message.Body) // after the ack: the counts below must see it
			}
		}(i)
	}
	for i := 0; i < n; i++ {
		publish(t, q, fmt.Sprint(i))
	}
	seen := map[string]bool{}
	for len(seen) < n {
		b := <-acked
		if seen[b] {
			t.Fatalf("message %s settled twice", b)
		}
		seen[b] = true
	}
	if r, u, _ := q.Counts(); r != 0 || u != 0 {
		t.Fatalf("left %d ready %d unacked", r, u)
	}
	_, _ = q.Delete(false, false)
}

// chanConsumer has prefetch 1: it takes a delivery only when its previous one was settled.
type chanConsumer struct {
	mu   sync.Mutex
	busy bool
	in   chan Delivery
}

func (c *chanConsumer) TryDeliver(d Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		return false
	}
	c.busy = true
	c.in <- d
	return true
}

func (c *chanConsumer) free(q *Queue) {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
}

func (c *chanConsumer) Cancelled(*Queue, string) { close(c.in) }

// TestRequeueManyKeepsPositions: requeueing many deliveries at once (a channel closing with
// many unacknowledged messages), in any order, puts each back at its original position.
func TestRequeueManyKeepsPositions(t *testing.T) {
	q := New("q", Options{})
	const n = 1000
	for i := range n {
		if _, err := q.Publish(&Message{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint64
	for range 700 {
		d, _, ok, err := q.Get(false)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		ids = append(ids, d.ID)
	}
	// Scrambled, and in two calls: the first 500 with every other one reversed, then the rest.
	first := append([]uint64(nil), ids[:500]...)
	for i, j := 0, len(first)-1; i < j; i, j = i+2, j-2 {
		first[i], first[j] = first[j], first[i]
	}
	q.Requeue(first...)
	q.Requeue(ids[500:]...)
	for i := range n {
		d, _, ok, err := q.Get(true)
		if err != nil || !ok || string(d.Message.Body) != fmt.Sprint(i) {
			t.Fatalf("get %d: %v %v %v", i, d.Message, ok, err)
		}
		if want := i < 700; d.Redelivered != want {
			t.Fatalf("message %d redelivered=%v, want %v", i, d.Redelivered, want)
		}
	}
	if r, u, _ := q.Counts(); r != 0 || u != 0 {
		t.Fatalf("left: %d ready, %d unacked", r, u)
	}
}
