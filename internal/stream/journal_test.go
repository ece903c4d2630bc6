package stream

import (
	"context"
	"errors"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// openJournalManager opens a manager with the produce journal whose logs live in fsys (nil:
// the OS's) and whose catalog is in dir.
func openJournalManager(t *testing.T, dir string, fsys log.FS, journal bool) *Manager {
	t.Helper()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways, FS: fsys,
		JournalDir: datadir.New(dir).KafkaJournal(), Journal: journal}, cat)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// storedBatch is what a partition holds at an offset, as far as these tests look.
type storedBatch struct {
	base, last int64
	pid        int64
	seq        int32
	control    bool
}

// partitionBatches lists the batches of p below its high watermark.
func partitionBatches(t *testing.T, p *Partition) []storedBatch {
	t.Helper()
	var out []storedBatch
	for off := p.log.StartOffset(); off < p.log.HighWatermark(); {
		rr, err := p.log.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rr.AppendTo(nil)
		rr.Release()
		if err != nil {
			t.Fatal(err)
		}
		for len(b) >= rb.HeaderLen {
			h, err := rb.ParseHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, storedBatch{base: h.BaseOffset, last: h.LastOffset(), pid: h.ProducerID, seq: h.BaseSequence, control: h.Control()})
			off = h.LastOffset() + 1
			b = b[h.Length:]
		}
	}
	return out
}

// TestJournalCrashReplay: with the produce journal, partitions never fsynced before the
// acknowledgement keep, after any crash of the file system, every acknowledged batch once, at
// its acknowledged offset (idempotent and transactional batches, markers between them, three
// partitions, background flushes at random points), and every batch a reader could see before
// the crash; the journal is replayed before the producer state is rebuilt, so a retry of the
// last acknowledged batch is answered as a duplicate with its original offsets.
func TestJournalCrashReplay(t *testing.T) {
	t.Parallel()
	const parts = 3
	for round := range 25 {
		rng := rand.New(rand.NewPCG(uint64(round), 19))
		dir := t.TempDir()
		fsys := log.NewMemFS()
		m := openJournalManager(t, dir, fsys, true)
		tp, err := m.CreateTopic("t", parts, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var acked [parts][]storedBatch
		var lastIdem [parts]*storedBatch
		var seq, tseq [parts]int32
		var inTxn [parts]bool
		const idem, txn = int64(100), int64(200)
		for k := range 60 {
			i := rng.IntN(parts)
			p := tp.Partition(int32(i))
			switch r := rng.IntN(10); {
			case r < 6:
				n := int32(rng.IntN(3) + 1)
				res, err := p.Append(batch(idem, 0, seq[i], n, 40))
				if err != nil {
					t.Fatal(err)
				}
				sb := storedBatch{base: res.BaseOffset, last: res.LastOffset, pid: idem, seq: seq[i]}
				seq[i] += n
				if rng.IntN(3) > 0 {
					if err := p.WaitDurable(ctx, res.LastOffset); err != nil {
						t.Fatal(err)
					}
					acked[i] = append(acked[i], sb)
					lastIdem[i] = &sb
				}
			case r < 8:
				res, err := p.Append(txnBatch(txn, 0, tseq[i], 2))
				if err != nil {
					t.Fatal(err)
				}
				tseq[i] += 2
				inTxn[i] = true
				if err := p.WaitDurable(ctx, res.LastOffset); err != nil {
					t.Fatal(err)
				}
				acked[i] = append(acked[i], storedBatch{base: res.BaseOffset, last: res.LastOffset, pid: txn, seq: tseq[i] - 2})
			case r < 9:
				if inTxn[i] {
					if err := p.WriteMarker(ctx, txn, 0, 0, rng.IntN(2) == 0); err != nil {
						t.Fatal(err)
					}
					inTxn[i] = false
					end := p.log.EndOffset()
					acked[i] = append(acked[i], storedBatch{base: end - 1, last: end - 1, pid: txn, seq: -1, control: true})
				}
			default:
				if err := m.flushJournal(); err != nil {
					t.Fatal(err)
				}
			}
			_ = k
		}
		var seen [parts][]storedBatch
		for i := range parts {
			seen[i] = partitionBatches(t, tp.Partition(int32(i)))
		}
		crashed := fsys.Crash(func(n int) int { return rng.IntN(n + 1) })
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		for reopen := range 2 { // a second replay of the same crashed state changes nothing
			m2 := openJournalManager(t, dir, crashed, true)
			tp2, _ := m2.Topic("t")
			for i := range parts {
				p := tp2.Partition(int32(i))
				got := partitionBatches(t, p)
				at := map[int64]storedBatch{}
				for _, b := range got {
					at[b.base] = b
				}
				for _, want := range append(acked[i], seen[i]...) {
					if b, ok := at[want.base]; !ok || b != want {
						t.Fatalf("round %d reopen %d partition %d: acknowledged or seen batch %+v missing; have %+v", round, reopen, i, want, got)
					}
				}
				ids := map[[2]int64]bool{}
				for _, b := range got {
					if b.control {
						continue
					}
					id := [2]int64{b.pid, int64(b.seq)}
					if ids[id] {
						t.Fatalf("round %d partition %d: batch %+v twice in %+v", round, i, b, got)
					}
					ids[id] = true
				}
				if last := lastIdem[i]; last != nil && reopen == 0 {
					n := int32(last.last - last.base + 1)
					res, err := p.Append(batch(idem, 0, last.seq, n, 40))
					if err != nil {
						t.Fatalf("round %d partition %d: retry of %+v: %v", round, i, *last, err)
					}
					if !res.Duplicate || res.BaseOffset != last.base {
						t.Fatalf("round %d partition %d: retry of %+v answered %+v, want a duplicate", round, i, *last, res)
					}
				}
			}
			if err := m2.Close(); err != nil {
				t.Fatal(err)
			}
			crashed = crashed.Crash(func(n int) int { return n })
		}
	}
}

// TestJournalVisibility: a journaled batch is read only once the journal's fsync covers it,
// as without the journal under the default policy: with the journal's fsync failing, the
// produce fails and no reader sees the batch.
func TestJournalVisibility(t *testing.T) {
	t.Parallel()
	fsys := log.NewMemFS()
	m := openJournalManager(t, t.TempDir(), fsys, true)
	defer m.Close()
	tp, err := m.CreateTopic("v", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	res, err := p.Append(batch(-1, -1, -1, 2, 20))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(t.Context(), res.LastOffset); err != nil {
		t.Fatal(err)
	}
	if hw := p.log.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d after a durable batch of 2, want 2", hw)
	}
	fsys.FailNextSync(errors.New("injected"))
	res, err = p.Append(batch(-1, -1, -1, 3, 20))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(t.Context(), res.LastOffset); err == nil {
		t.Fatal("WaitDurable succeeded although the journal's fsync failed")
	}
	if hw := p.log.HighWatermark(); hw != 2 {
		t.Fatalf("high watermark %d: a batch the journal never made durable is visible", hw)
	}
}

// TestJournalTopicRecreated: entries of a deleted topic are not replayed into a new topic of
// the same name (entries name topics by ID): after a restart the new topic holds its own
// batches only.
func TestJournalTopicRecreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openJournalManager(t, dir, nil, true)
	ctx := context.Background()
	old, err := m.CreateTopic("r", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		res, err := old.Partition(int32(i % 2)).Append(batch(-1, -1, -1, 3, 30))
		if err != nil {
			t.Fatal(err)
		}
		if err := old.Partition(int32(i%2)).WaitDurable(ctx, res.LastOffset); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.DeleteTopic("r"); err != nil {
		t.Fatal(err)
	}
	nt, err := m.CreateTopic("r", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := nt.Partition(0).Append(batch(-1, -1, -1, 1, 30))
	if err != nil {
		t.Fatal(err)
	}
	if err := nt.Partition(0).WaitDurable(ctx, res.LastOffset); err != nil {
		t.Fatal(err)
	}
	// The journal still holds the old topic's entries (a journal's active segment is never
	// released), so the next start replays them: past the new partitions' ends, they would
	// be appended there if entries named topics by name.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openJournalManager(t, dir, nil, true)
	defer m2.Close()
	tp, _ := m2.Topic("r")
	got0, got1 := partitionBatches(t, tp.Partition(0)), partitionBatches(t, tp.Partition(1))
	if len(got0) != 1 || got0[0].base != 0 || got0[0].last != 0 || len(got1) != 0 {
		t.Fatalf("recreated topic holds %+v and %+v, want one batch of one record in partition 0", got0, got1)
	}
}

// TestJournalConcurrentAndUnwaited: concurrent producers on several partitions share the
// journal; batches nobody waits for (acks=0 and 1) become visible once the journal's group
// commit covers them, without any waiter.
func TestJournalConcurrentAndUnwaited(t *testing.T) {
	t.Parallel()
	m := openJournalManager(t, t.TempDir(), nil, true)
	defer m.Close()
	tp, err := m.CreateTopic("c", 3, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			for k := range 100 {
				p := tp.Partition(int32((g + k) % 3))
				res, err := p.Append(batch(-1, -1, -1, 2, 30))
				if err == nil && k%2 == 0 {
					err = p.WaitDurable(context.Background(), res.LastOffset)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, p := range tp.Partitions() {
		for {
			ch := p.log.Changed()
			if p.log.HighWatermark() == p.log.EndOffset() {
				break
			}
			select {
			case <-ch:
			case <-t.Context().Done():
				t.Fatalf("partition %d: high watermark %d stays below the end %d", p.Index, p.log.HighWatermark(), p.log.EndOffset())
			}
		}
		total += p.log.EndOffset()
	}
	if total != 800 {
		t.Fatalf("%d records in all, want 800", total)
	}
}

// TestJournalAppendFailsPartitionFsynced: when the journal cannot take an entry (a full disk),
// the batch already in the partition's log is fsynced there instead: the produce succeeds, the
// batch is readable and survives a crash, and the partition's later entries replay after it.
func TestJournalAppendFailsPartitionFsynced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys := log.NewMemFS()
	m := openJournalManager(t, dir, fsys, true)
	tp, err := m.CreateTopic("f", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	ctx := context.Background()
	fsys.FailWriteAt(1, syscall.ENOSPC) // the partition's write succeeds, the journal's fails
	res, err := p.Append(batch(-1, -1, -1, 2, 20))
	if err != nil {
		t.Fatal(err)
	}
	if fsys.Faults() != 1 {
		t.Fatalf("%d faults fired, want the journal's write to fail", fsys.Faults())
	}
	if err := p.WaitDurable(ctx, res.LastOffset); err != nil {
		t.Fatal(err)
	}
	res, err = p.Append(batch(-1, -1, -1, 3, 20))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(ctx, res.LastOffset); err != nil {
		t.Fatal(err)
	}
	crashed := fsys.Crash(func(int) int { return 0 }) // nothing unsynced survives
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2 := openJournalManager(t, dir, crashed, true)
	defer m2.Close()
	t2, _ := m2.Topic("f")
	got := partitionBatches(t, t2.Partition(0))
	if len(got) != 2 || got[0].base != 0 || got[0].last != 1 || got[1].base != 2 || got[1].last != 4 {
		t.Fatalf("after the crash: %+v, want batches 0-1 and 2-4", got)
	}
}
