package ratelog

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
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

func newTest(interval time.Duration) (*Limiter, *fakeClock, *bytes.Buffer) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clk := &fakeClock{t: time.Unix(1000, 0)}
	return newWithClock(log, interval, clk.now), clk, &buf
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestOneLinePerKeyPerInterval(t *testing.T) {
	t.Parallel()
	l, clk, buf := newTest(time.Second)
	if !l.Warn("refused", "connection refused", "remote", "a") {
		t.Fatal("first line for a key was suppressed")
	}
	for i := 0; i < 5; i++ {
		if l.Warn("refused", "connection refused", "remote", "b") {
			t.Fatalf("line %d within the interval was written", i)
		}
	}
	if !l.Warn("other", "another kind") {
		t.Fatal("another key was suppressed by the first")
	}
	clk.add(time.Second)
	if !l.Warn("refused", "connection refused", "remote", "c") {
		t.Fatal("line after the interval was suppressed")
	}
	got := lines(buf)
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(got), buf)
	}
	if strings.Contains(got[0], "suppressed") || !strings.Contains(got[2], "suppressed=5") || !strings.Contains(got[2], "remote=c") {
		t.Fatalf("suppressed counts wrong:\n%s", buf)
	}
	clk.add(time.Second)
	l.Warn("refused", "connection refused")
	if last := lines(buf)[3]; strings.Contains(last, "suppressed") {
		t.Fatalf("count not reset after being reported: %s", last)
	}
}

func TestDisabledLevelCountsNothing(t *testing.T) {
	t.Parallel()
	l, clk, buf := newTest(time.Second)
	l.Log(t.Context(), slog.LevelDebug, "k", "debug line")
	l.Warn("k", "warn line")
	clk.add(time.Second)
	l.Warn("k", "warn line")
	if got := lines(buf); len(got) != 2 || strings.Contains(buf.String(), "suppressed") || strings.Contains(buf.String(), "debug line") {
		t.Fatalf("disabled level affected output:\n%s", buf)
	}
}

func TestKeyTableBounded(t *testing.T) {
	t.Parallel()
	l, clk, buf := newTest(time.Second)
	for i := 0; i < maxKeys; i++ {
		l.Warn(fmt.Sprint(i), "line")
	}
	// The table is full of keys used within the interval: new keys share the overflow entry.
	written := 0
	for i := 0; i < 100; i++ {
		if l.Warn(fmt.Sprint("new", i), "line") {
			written++
		}
	}
	if written != 1 {
		t.Fatalf("%d lines written for 100 new keys on a full table, want 1 (the overflow entry)", written)
	}
	if len(l.keys) > maxKeys+1 {
		t.Fatalf("table grew to %d keys", len(l.keys))
	}
	// After an interval the idle keys are forgotten and new keys get their own entries.
	clk.add(time.Second)
	if !l.Warn("fresh", "line") || !l.Warn("fresh2", "line") {
		t.Fatal("new keys suppressed after idle ones could be forgotten")
	}
	if len(l.keys) > maxKeys+1 {
		t.Fatalf("table grew to %d keys", len(l.keys))
	}
	_ = buf
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	l := New(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 1000; i++ {
				l.Warn(fmt.Sprint(i%50), "line", "i", i)
			}
		})
	}
	wg.Wait()
}

func TestNilLoggerDiscards(t *testing.T) {
	t.Parallel()
	if New(nil, 0).Warn("k", "x") {
		t.Fatal("nil logger wrote")
	}
}
