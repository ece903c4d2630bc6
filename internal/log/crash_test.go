package log

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// crashScenario appends random batches to a MemFS log (some acknowledged as
// durable), crashes at a random point with a random cut of every file's unsynced
// bytes and directory operations, reopens, and checks the two promises: the log
// is a prefix of what was appended, and it holds every acknowledged batch.
func crashScenario(t *testing.T, seed uint64) (recovered, appended, acknowledged int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	fsys := NewMemFS()
	dir := "/data/p0"
	policy := []SyncPolicy{SyncAlways, SyncAlways, SyncNever, SyncInterval}[rng.IntN(4)]
	opts := Options{
		FS: fsys, SyncPolicy: policy, SyncInterval: time.Millisecond,
		SegmentBytesMax: int64(300 + rng.IntN(3000)), IndexIntervalBytes: 50 + rng.IntN(500),
	}
	l := mustOpen(t, dir, opts)
	appenders := 1 + rng.IntN(4)
	perAppender := 1 + rng.IntN(30)
	crashAfter := rng.IntN(appenders*perAppender + 1) // crash once this many appends returned

	var (
		mu      sync.Mutex // orders acknowledgements against the crash snapshot
		acked   = map[int64][]byte{}
		done    int
		crashed *MemFS
	)
	crash := func() {
		if crashed == nil {
			crashed = fsys.Crash(func(n int) int {
				switch rng.IntN(4) {
				case 0:
					return 0
				case 1:
					return n
				}
				return rng.IntN(n + 1)
			})
		}
	}
	var wg sync.WaitGroup
	seeds := make([]*rand.Rand, appenders)
	for a := range seeds {
		seeds[a] = rand.New(rand.NewPCG(seed+uint64(a), 7))
	}
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func(r *rand.Rand) {
			defer wg.Done()
			for i := 0; i < perAppender; i++ {
				var buf []byte
				for k := 0; k <= r.IntN(3); k++ {
					buf = append(buf, makeBatch(1+r.IntN(5), r.IntN(200), r.Int64N(1e12), byte(r.IntN(256)))...)
				}
				res, err := l.AppendNoWait(buf)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				durable := false
				switch {
				case policy == SyncAlways && r.IntN(4) > 0:
					durable = l.WaitDurable(context.Background(), res.LastOffset) == nil
				case r.IntN(8) == 0:
					durable = l.Sync() == nil
				}
				mu.Lock()
				if durable && crashed == nil {
					for p := 0; p < len(buf); {
						info, _ := parseBatchPrefix(buf[p:])
						acked[info.baseOffset] = buf[p : p+int(info.size)]
						p += int(info.size)
					}
				}
				done++
				if done == crashAfter {
					crash()
				}
				mu.Unlock()
			}
		}(seeds[a])
	}
	wg.Wait()
	mu.Lock()
	crash()
	mu.Unlock()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	full := readAll(t, l)
	l.Close()

	opts.FS = crashed
	l2, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("seed %d: open after crash: %v", seed, err)
	}
	got := readAll(t, l2)
	if len(got) > len(full) {
		t.Fatalf("seed %d: %d batches after crash, only %d appended", seed, len(got), len(full))
	}
	byOffset := map[int64]bool{}
	for i := range got {
		if string(got[i]) != string(full[i]) {
			t.Fatalf("seed %d: batch %d after crash differs from what was appended", seed, i)
		}
		byOffset[int64(binary.BigEndian.Uint64(got[i]))] = true
	}
	for off, b := range acked {
		if !byOffset[off] {
			t.Fatalf("seed %d: acknowledged batch at offset %d (%d bytes) lost; recovered %d of %d batches, policy %v",
				seed, off, len(b), len(got), len(full), policy)
		}
	}
	// The recovered log works: append, close, reopen.
	extra := makeBatch(2, 10, 1, 1)
	mustAppend(t, l2, extra)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	l3 := mustOpen(t, dir, opts)
	defer l3.Close()
	checkBatches(t, readAll(t, l3), append(got, extra))
	return len(got), len(full), len(acked)
}

func TestCrashRecoveryProperty(t *testing.T) {
	t.Parallel()
	n := 300
	if testing.Short() {
		n = 50
	}
	var lossy, withAcks int
	for seed := uint64(0); seed < uint64(n); seed++ {
		rec, app, ack := crashScenario(t, seed)
		if rec < app {
			lossy++
		}
		if ack > 0 && rec < app {
			withAcks++
		}
	}
	// Guard against a vacuous test: crashes must lose unacknowledged data in many
	// runs, including runs that had acknowledged data to keep.
	if lossy < n/4 || withAcks < n/10 {
		t.Fatalf("only %d of %d runs lost data, %d of them with acknowledged batches", lossy, n, withAcks)
	}
}

// FuzzCrashRecovery explores crash points and cuts: go test -fuzz FuzzCrashRecovery.
func FuzzCrashRecovery(f *testing.F) {
	for _, s := range []uint64{1, 42, 1 << 40, 987654321} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) { crashScenario(t, seed) })
}

// TestTruncateAndDeleteAreDurable: once TruncateTo and DeleteRecordsBefore
// return, any crash keeps their effect and every acknowledged batch they kept.
func TestTruncateAndDeleteAreDurable(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		fsys := NewMemFS()
		opts := Options{FS: fsys, SegmentBytesMax: int64(300 + rng.IntN(1500)), IndexIntervalBytes: 100}
		l := mustOpen(t, "/d/log", opts)
		want := appendN(t, l, 10+rng.IntN(30), 1+rng.IntN(3), rng.IntN(150), constTS(0))
		start := int64(0)
		if rng.IntN(2) == 0 {
			start = rng.Int64N(l.EndOffset() / 2)
			if err := l.DeleteRecordsBefore(start); err != nil {
				t.Fatal(err)
			}
		}
		cut := start + rng.Int64N(l.EndOffset()-start)
		if err := l.TruncateTo(cut); err != nil {
			t.Fatal(err)
		}
		end := l.EndOffset()
		kept := readAll(t, l)
		opts.FS = fsys.Crash(func(n int) int { return rng.IntN(n + 1) })
		l.Close()
		l2 := mustOpen(t, "/d/log", opts)
		if l2.StartOffset() != min(start, end) || l2.EndOffset() != end {
			t.Fatalf("seed %d: start/end %d/%d after crash, want %d/%d", seed, l2.StartOffset(), l2.EndOffset(), start, end)
		}
		checkBatches(t, readAll(t, l2), kept)
		if len(want) == 0 {
			t.Fatal("nothing appended")
		}
		l2.Close()
	}
}
