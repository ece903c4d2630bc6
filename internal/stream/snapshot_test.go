package stream

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/yardmq/yard/internal/datadir"
)

// produceIdem appends an idempotent batch and returns its base offset.
func produceIdem(t *testing.T, p *Partition, pid int64, seq int32, n int32) int64 {
	t.Helper()
	r, err := p.Append(batch(pid, 0, seq, n, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(t.Context(), r.LastOffset); err != nil {
		t.Fatal(err)
	}
	return r.BaseOffset
}

// TestProducerStateAcrossRestarts: the state is the same whether it comes from the latest
// snapshot (clean restart), an older snapshot plus a scan of what followed (crash), a full scan
// (no snapshot), or a full scan because the snapshot is beyond the log end or damaged. The
// batches carry 1970 timestamps: the rebuild must not depend on them.
func TestProducerStateAcrossRestarts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"snapshot", "older snapshot", "no snapshot", "snapshot beyond end", "damaged snapshot"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			tp, _ := m.CreateTopic("s", 1, nil, false)
			p := tp.Partition(0)
			produceIdem(t, p, 7, 0, 3)
			snap := filepath.Join(datadir.New(dir).ProducerSnapshots(), "s-0.json")
			m.writeSnapshots() // as the periodic snapshot would
			older, err := os.ReadFile(snap)
			if err != nil {
				t.Fatal(err)
			}
			second := produceIdem(t, p, 7, 3, 2)
			produceIdem(t, p, 8, 0, 1)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(snap); err != nil {
				t.Fatalf("no snapshot after Close: %v", err)
			}
			switch mode {
			case "no snapshot":
				os.Remove(snap)
			case "older snapshot":
				os.WriteFile(snap, older, 0o644)
			case "snapshot beyond end":
				// As if a crash took a tail the snapshot had seen: it must be ignored.
				q := &Partition{producers: map[int64]*producerState{}}
				data, _ := q.encodeSnapshot(1000)
				os.WriteFile(snap, data, 0o644)
			case "damaged snapshot":
				data, _ := os.ReadFile(snap)
				data[len(data)/2] ^= 1
				os.WriteFile(snap, data, 0o644)
			}
			m2 := openManager(t, dir)
			defer m2.Close()
			p2 := m2.Topics()[0].Partition(0)
			if r, err := p2.Append(batch(7, 0, 3, 2, 10)); err != nil || !r.Duplicate || r.BaseOffset != second {
				t.Fatalf("retry of producer 7's second batch: %+v %v", r, err)
			}
			if _, err := p2.Append(batch(7, 0, 9, 1, 10)); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap for producer 7: %v", err)
			}
			if r, err := p2.Append(batch(8, 0, 1, 1, 10)); err != nil || r.Duplicate {
				t.Fatalf("next batch of producer 8: %+v %v", r, err)
			}
		})
	}
}

// FuzzDecodeSnapshot: arbitrary bytes never panic the snapshot decoder, and what it accepts
// re-encodes to an equal state.
func FuzzDecodeSnapshot(f *testing.F) {
	p := &Partition{producers: map[int64]*producerState{
		3: {epoch: 1, lastSeenMs: 99, batches: []seqEntry{{0, 4, 10, 14, -1}, {5, 5, 20, 20, -1}}},
	}}
	good, _ := p.encodeSnapshot(30)
	f.Add(good)
	f.Add([]byte(`{"format":1,"crc32c":0,"state":{}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		end, producers, _, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		q := &Partition{producers: producers}
		again, err := q.encodeSnapshot(end)
		if err != nil {
			t.Fatal(err)
		}
		end2, producers2, _, err := decodeSnapshot(again)
		if err != nil || end2 != end || len(producers2) != len(producers) {
			t.Fatalf("round trip changed the snapshot: %v", err)
		}
	})
}

func TestSnapshotsOfDeletedTopicsRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	tp, _ := m.CreateTopic("gone", 1, nil, false)
	produceIdem(t, tp.Partition(0), 1, 0, 1)
	m.writeSnapshots()
	snap := filepath.Join(datadir.New(dir).ProducerSnapshots(), "gone-0.json")
	if _, err := os.Stat(snap); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("snapshot of a deleted topic: %v", err)
	}
	stray := filepath.Join(datadir.New(dir).ProducerSnapshots(), "never-3.json")
	os.WriteFile(stray, []byte("{}"), 0o644)
	m.Close()
	m2 := openManager(t, dir)
	defer m2.Close()
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stray snapshot kept: %v", err)
	}
}
