package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{live: 16 << 20, headroom: 64 << 20, want: 400},  // small heap: goal live + 64 MiB
		{live: 64 << 20, headroom: 64 << 20, want: 100},  // from here on GOGC=100's proportion
		{live: 512 << 20, headroom: 64 << 20, want: 100}, // a deep queue's heap
		{live: 0, headroom: 64 << 20, want: 6400},        // before anything is measured
		{live: 1 << 10, headroom: 64 << 20, want: 10000}, // capped
	} {
		if got := gcPercentFor(c.live, c.headroom); got != c.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// TestHeapTunerFollowsCollections checks the tuner raises the GC percent after a collection
// when the live heap is small, and restores the default when stopped.
func TestHeapTunerFollowsCollections(t *testing.T) {
	t.Setenv("GOGC", "") // restored after the test; the tuner only asks whether it is set
	os.Unsetenv("GOGC")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := startHeapTuner(1 << 30)
	got := 100
	for range 100 {
		runtime.GC() // the sentinel's finalizer runs after this collection
		time.Sleep(5 * time.Millisecond)
		if got = debug.SetGCPercent(100); got > 100 {
			break
		}
	}
	stop()
	if got <= 100 {
		t.Fatalf("GC percent with a small live heap and 1 GiB headroom = %d, want above 100", got)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("GC percent after stop = %d, want 100", p)
	}
}
