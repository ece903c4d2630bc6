package main

// Heap headroom for the garbage collector.
//
// Go collects when the heap reaches (1 + GOGC/100) times the live heap. A broker's live heap
// is often small, tens of MiB, while it allocates at its message rate: every message body is
// a fresh allocation, over 100 MB/s under load. With the default GOGC=100 that meant several
// collections a second; measured at 20,000 persistent msgs/s (PerfTest, 1 KiB, three runs
// each), giving the collector more room cut yard's CPU per message by about 7%.
//
// The tuner keeps the collector's goal at no less than live + headroom: after every
// collection it sets the GC percent to max(100, headroom*100/live). A large live heap (a
// deep queue's index, many connections) keeps the default proportion, so memory bounds
// measured with GOGC=100 still hold; a small one gets at most headroom bytes more. Setting
// GOGC in the environment, or a headroom of 0, leaves the runtime's own policy alone.
//
// 32 MiB: at a paced 20,000 msgs/s, 16, 32 and 64 MiB all cost the same CPU per message
// (within the noise of three runs each); a live heap of 5 MiB then collects at about 37 MiB
// instead of 10. A deep queue's index (tens of MiB and more) is past it, so the 10-million-
// message bound is measured under plain GOGC=100 proportions.

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// defaultGCHeadroom is --gc-headroom-bytes' default.
const defaultGCHeadroom = 32 << 20

// gcPercentFor returns the GC percent that puts the goal at least headroom above live.
func gcPercentFor(live, headroom uint64) int {
	const base, most = 100, 10000
	if live == 0 {
		live = 1 << 20
	}
	p := headroom * 100 / live
	switch {
	case p < base:
		return base
	case p > most:
		return most
	}
	return int(p)
}

type heapTuner struct {
	headroom uint64
	mu       sync.Mutex // guards the fields below
	stopped  bool
	percent  int
	sample   []metrics.Sample
}

// gcSentinel is garbage by the next collection; its finalizer runs once that collection is
// done. Its pointer field keeps it out of the tiny allocator, whose objects may never be
// finalized.
type gcSentinel struct{ t *heapTuner }

// startHeapTuner starts tuning and returns the function that stops it.
func startHeapTuner(headroom uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set || headroom == 0 {
		return func() {}
	}
	t := &heapTuner{headroom: headroom, percent: 100,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.arm()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.stopped = true
		debug.SetGCPercent(100)
	}
}

func (t *heapTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		if s.t.tune() {
			s.t.arm()
		}
	})
}

// tune runs on the finalizer goroutine after each collection; false: stopped.
func (t *heapTuner) tune() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return true
	}
	p := gcPercentFor(t.sample[0].Value.Uint64(), t.headroom)
	if d := p - t.percent; d > t.percent/10 || -d > t.percent/10 { // skip small changes
		t.percent = p
		debug.SetGCPercent(p)
	}
	return true
}
