package queue

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// waitFor polls cond (each wake-up is a log change or a short nap) and fails after a generous
// deadline: a guard against hanging, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func openStore(t *testing.T, dir string, flushDelay time.Duration) *LogStore {
	t.Helper()
	s, err := OpenLogStore(dir, LogStoreOptions{FlushDelay: flushDelay})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A waited-for message must be written by Wait itself: with the timer out of the picture
// (an hour), nothing else would write it, and WaitDurable on an unwritten offset fails.
func TestLogStoreWaitFlushesBuffer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openStore(t, dir, time.Hour)
	var ws []Waiter
	for i := range 5 {
		w, err := s.Append(uint64(i), &Message{Body: []byte(fmt.Sprint(i)), Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if end := s.msgs.EndOffset(); end != 0 {
		t.Fatalf("message log end %d before any Wait: appends were not buffered", end)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ws[2].Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// One Wait wrote the whole buffer, and the message is durable: readable at once.
	if hw := s.msgs.HighWatermark(); hw != 5 {
		t.Fatalf("high watermark %d after Wait, want 5", hw)
	}
	for _, w := range ws {
		if err := w.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _, _, err := s.ReadFrom(0, 1<<20)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("read back %d messages (err %v), want 5", len(msgs), err)
	}
	s.msgs.Close() // simulate a crash: no Close of the store, no final flush
	s.acks.Close()
	s2 := openStore(t, dir, time.Hour)
	defer s2.Close()
	if rec := s2.Recovered(); rec.Next != 5 || rec.Live != 5 {
		t.Fatalf("recovered %+v, want 5 live messages", rec)
	}
}

// Messages nobody waits for (transient ones on a durable queue) still reach the log.
func TestLogStoreFlushesUnwaitedMessages(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), 0)
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	for i := range 10 {
		if _, err := q.Publish(&Message{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "unwaited messages to become readable", func() bool { return s.msgs.HighWatermark() == 10 })
}

// A full buffer is written without anyone waiting (by the store's writer goroutine, not
// under the caller's lock).
func TestLogStoreFlushesFullBuffer(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), time.Hour)
	defer s.Close()
	body := make([]byte, 1024)
	const n = 100
	for i := range n {
		if _, err := s.Append(uint64(i), &Message{Body: body, Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a full buffer to be written", func() bool { return s.msgs.EndOffset() >= writeBufferBytes/1100 })
}

// A deep queue whose tail is only in the write buffer reads it back (ReadFrom flushes).
func TestLogStorePagedReadFlushes(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), time.Hour)
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	body := make([]byte, 8<<10)
	n := readyWindowBytes/len(body) + 100
	for i := range n {
		copy(body, fmt.Sprintf("%08d", i))
		if _, err := q.Publish(&Message{Body: append([]byte(nil), body...), Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	ds := getAll(t, q)
	if len(ds) != n {
		t.Fatalf("got %d messages, want %d", len(ds), n)
	}
	for i, d := range ds {
		if want := fmt.Sprintf("%08d", i); string(d.Message.Body[:8]) != want {
			t.Fatalf("message %d is %q, want %q", i, d.Message.Body[:8], want)
		}
	}
}

// Publishers append under the queue's lock while confirmers wait outside it: every waited
// message is durable and survives a reopen.
func TestLogStoreConcurrentPublishWait(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := New("q", Options{Durable: true, Store: openStore(t, dir, 0)})
	const writers, each = 4, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				w, err := q.Publish(&Message{Body: []byte(fmt.Sprint(g, i)), Persistent: true})
				if err == nil {
					err = w.Wait(context.Background())
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := q.opts.Store.(*LogStore)
	s.msgs.Close() // crash: only what Wait made durable counts
	s.acks.Close()
	s2 := openStore(t, dir, 0)
	defer s2.Close()
	if rec := s2.Recovered(); rec.Live != writers*each {
		t.Fatalf("recovered %d live messages, want %d", rec.Live, writers*each)
	}
}

// writeSyscalls reads this process's write system call count (Linux), or -1.
func writeSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkLogStorePublishConfirm: the durable publish path without the network, as the AMQP
// front end drives it: one publisher appends persistent 1 KiB messages under the queue's lock
// and hands each Waiter to a confirmer goroutine that waits for it (up to 1000 outstanding).
// writes/op counts write system calls (pwrite and fsync's neighbours) per message.
func BenchmarkLogStorePublishConfirm(b *testing.B) {
	s, err := OpenLogStore(b.TempDir(), LogStoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	q := New("bench", Options{Durable: true, Store: s})
	defer q.Close()
	waits := make(chan Waiter, 1000)
	done := make(chan error, 1)
	go func() {
		var err error
		for w := range waits {
			if e := w.Wait(context.Background()); e != nil && err == nil {
				err = e
			}
		}
		done <- err
	}()
	body := make([]byte, 1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	w0 := writeSyscalls()
	b.ResetTimer()
	for range b.N {
		w, err := q.Publish(&Message{Body: body, Persistent: true})
		if err != nil {
			b.Fatal(err)
		}
		waits <- w
	}
	close(waits)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if w0 >= 0 {
		b.ReportMetric(float64(writeSyscalls()-w0)/float64(b.N), "writes/op")
	}
}

// While a write is under way the buffer keeps filling; it must grow by doubling, not by
// append's quarter steps, each of which copied the whole buffer into a fresh allocation.
func TestWriteBufferGrowsByDoubling(t *testing.T) {
	t.Parallel()
	s := openStore(t, t.TempDir(), time.Hour)
	defer s.Close()
	s.fmu.Lock() // a write under way: the writer goroutine cannot take the buffer
	body := make([]byte, 1024)
	grows, last := 0, 0
	for i := range 2048 { // 2 MiB, below writeBufferMax
		if _, err := s.Append(uint64(i), &Message{Body: body, Persistent: true}); err != nil {
			t.Fatal(err)
		}
		s.wmu.Lock()
		c := cap(s.wq)
		s.wmu.Unlock()
		if c != last {
			grows, last = grows+1, c
		}
	}
	s.fmu.Unlock()
	// From nothing to 2 MiB by doubling from the first message's size: about a dozen.
	if grows > 14 {
		t.Fatalf("the write buffer was reallocated %d times while filling 2 MiB, want at most 14", grows)
	}
}

// BenchmarkLogStoreAppendBuffered: the publish path's encoding of a persistent 1 KiB message
// into the write buffer while the writer is held back, as by a write under way. Each round
// buffers a different amount (64 KiB to 1.5 MiB, as the disk's pace varies), then the buffer
// is written (untimed) and the next round fills the spare.
func BenchmarkLogStoreAppendBuffered(b *testing.B) {
	s, err := OpenLogStore(b.TempDir(), LogStoreOptions{FlushDelay: time.Hour, SyncPolicy: log.SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m := &Message{RoutingKey: "bench", Body: make([]byte, 1024), Persistent: true}
	rounds := []int{64, 1500, 200, 700, 100, 1200} // messages per round
	b.SetBytes(int64(len(m.Body)))
	b.ReportAllocs()
	s.fmu.Lock()
	left, r := rounds[0], 0
	for i := range b.N {
		if left == 0 {
			b.StopTimer()
			s.fmu.Unlock()
			if err := s.writeMessages(); err != nil {
				b.Fatal(err)
			}
			s.fmu.Lock()
			r = (r + 1) % len(rounds)
			left = rounds[r]
			b.StartTimer()
		}
		left--
		if _, err := s.Append(uint64(i), m); err != nil {
			b.Fatal(err)
		}
	}
	s.fmu.Unlock()
}
