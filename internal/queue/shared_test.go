package queue

import (
	"sync"
	"testing"
	"time"
)

// A message routed to several queues is one *Message shared by all of them (Message says it
// is immutable once published). Each queue must keep its own enqueue time: a second queue
// taking the message later must not move the first queue's TTL deadline (and, with
// concurrent dispatch, must not write a field the first queue reads under its own lock).
func TestSharedMessageKeepsEachQueuesEnqueueTime(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	nowA := t0
	a := New("a", Options{Args: map[string]any{"x-message-ttl": int64(1000)},
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return nowA }})
	b := New("b", Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	m := &Message{Body: []byte("shared"), Persistent: true}
	if _, err := a.Publish(m); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(m); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	nowA = t0.Add(2 * time.Second) // past a's TTL, counted from when a took the message
	mu.Unlock()
	if d, _, ok, err := a.Get(true); err != nil || ok {
		t.Fatalf("queue a delivered %q two seconds into a one-second TTL (err %v)", d.Message.Body, err)
	}
	if d, _, ok, err := b.Get(true); err != nil || !ok || string(d.Message.Body) != "shared" {
		t.Fatalf("queue b: %v %v", ok, err)
	}
}
