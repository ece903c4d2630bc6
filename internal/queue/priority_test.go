package queue

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A durable priority queue far deeper than the in-memory window: its levels are paged like
// plain queues (heap stays bounded), it delivers the highest priority first and in publish
// order within a priority, a requeued message keeps its position, and all of it survives a
// restart. Not parallel: it measures the heap.
func TestPriorityQueuePagedAndDurable(t *testing.T) {
	dir := t.TempDir()
	args := map[string]any{"x-max-priority": int64(9)}
	open := func() *Queue {
		return New("q", Options{Durable: true, Store: openStore(t, dir, 0), Args: args,
			Parse: func(m *Message) { m.Priority = m.Body[0] }})
	}
	const size, total = 4 << 10, 50 << 20
	const n = total / size
	base := heapInUse()
	q := open()
	for i := range n {
		body := make([]byte, size)
		body[0] = byte(i % 10)
		copy(body[1:], fmt.Sprintf("%08d", i))
		if _, err := q.Publish(&Message{Body: body, Priority: body[0], Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	grew := heapInUse() - base
	t.Logf("heap grew by %.1f MiB holding %d MiB of priority messages", float64(grew)/(1<<20), total>>20)
	if grew > 3*readyWindowBytes {
		t.Fatalf("heap grew by %d MiB holding %d MiB of priority messages, want it bounded by the window (%d MiB)",
			grew>>20, total>>20, readyWindowBytes>>20)
	}
	if r, _, _ := q.Counts(); r != n {
		t.Fatalf("ready %d, want %d", r, n)
	}
	// Requeue keeps the position within the level.
	a, b := getOne(t, q), getOne(t, q)
	if a.Message.Body[0] != 9 || b.Message.Body[0] != 9 || string(a.Message.Body[1:9]) != "00000009" {
		t.Fatalf("first deliveries %q %q, want the first two of priority 9", a.Message.Body[:9], b.Message.Body[:9])
	}
	q.Requeue(a.ID)
	if c := getOne(t, q); c.ID != a.ID || !c.Redelivered {
		t.Fatalf("after requeue got %q (id %x), want %q again", c.Message.Body[:9], c.ID, a.Message.Body[:9])
	}
	q.Ack(b.ID) // a stays unacked: back in the queue after the restart
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = open()
	defer q.Close()
	if r, _, _ := q.Counts(); r != n-1 {
		t.Fatalf("ready after restart %d, want %d", r, n-1)
	}
	prev, prevIdx, got := 10, -1, 0
	for {
		d, _, ok, err := q.Get(false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if r, _, _ := q.Counts(); r == 0 {
				break
			}
			time.Sleep(time.Millisecond) // the next level's messages are being made readable
			continue
		}
		p, idx := int(d.Message.Body[0]), 0
		fmt.Sscanf(string(d.Message.Body[1:9]), "%d", &idx)
		if p > prev || p == prev && idx <= prevIdx || idx%10 != p {
			t.Fatalf("delivery %d: priority %d message %d after priority %d message %d", got, p, idx, prev, prevIdx)
		}
		prev, prevIdx = p, idx
		got++
		if got == 1000 {
			if grew := heapInUse() - base; grew > 3*readyWindowBytes {
				t.Fatalf("heap grew by %d MiB while draining, want it bounded by the window", grew>>20)
			}
		}
		q.Ack(d.ID)
	}
	if got != n-1 {
		t.Fatalf("drained %d messages after the restart, want %d", got, n-1)
	}
}

// Confirmed (waited-for) messages of every level survive a crash, and deleting the queue
// removes every level's files.
func TestPriorityQueueCrashAndDelete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := map[string]any{"x-max-priority": int64(3)}
	open := func() (*Queue, *LogStore) {
		s := openStore(t, dir, 0)
		return New("q", Options{Durable: true, Store: s, Args: args}), s
	}
	q, s := open()
	for i, p := range []uint8{0, 3, 1, 3, 2, 7} { // 7 is above the maximum: level 3
		w, err := q.Publish(&Message{Body: []byte(fmt.Sprint(i, "p", p)), Priority: p, Persistent: true})
		if err == nil {
			err = w.Wait(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range s.takeLevels() {
		crash(l)
	}
	crash(s)
	q, s = open()
	if got := fmt.Sprint(s.Recovered().Levels); got != "[1 2 3]" {
		t.Fatalf("recovered levels %s, want [1 2 3]", got)
	}
	var got []string
	for range 6 {
		d := getOne(t, q)
		got = append(got, string(d.Message.Body))
		q.Ack(d.ID)
	}
	if fmt.Sprint(got) != "[1p3 3p3 5p7 4p2 2p1 0p0]" {
		t.Fatalf("after a crash delivered %v", got)
	}
	if _, err := q.Delete(false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("queue directory after delete: %v", err)
	}
}
