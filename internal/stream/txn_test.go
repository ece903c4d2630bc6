package stream

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yardmq/yard/internal/datadir"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// txnBatch is an idempotent batch with the transactional attribute.
func txnBatch(pid int64, epoch int16, seq, n int32) []byte {
	b := batch(pid, epoch, seq, n, 10)
	b[rb.OffAttributes+1] |= rb.AttrTransactional
	binary.BigEndian.PutUint32(b[rb.OffCRC:], rb.Checksum(b))
	return b
}

func txnState(p *Partition) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("lso=%d ongoing=%v aborted=%v", p.lsoLocked(p.log.HighWatermark()), p.ongoing, p.aborted)
}

// TestTransactionStateAcrossRestarts: the last stable offset and the aborted-transaction
// index are the same after a restart, from the snapshot or rebuilt from the log alone; a
// read_committed read stops at the LSO and lists the aborted transactions it covers; markers
// are control batches as Kafka writes them.
func TestTransactionStateAcrossRestarts(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"snapshot", "no snapshot"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			m := openManager(t, dir)
			tp, _ := m.CreateTopic("s", 1, nil, false)
			p := tp.Partition(0)
			ctx := t.Context()
			// pid 1 commits [0,2) + marker 2; pid 2 aborts [3,5) + marker 5 (pid 1's plain
			// batch at 3..: see offsets below); pid 3 stays open from 6.
			mustAppend := func(b []byte) AppendResult {
				t.Helper()
				r, err := p.Append(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.WaitDurable(ctx, r.LastOffset); err != nil {
					t.Fatal(err)
				}
				return r
			}
			mustAppend(txnBatch(1, 0, 0, 2))                          // 0-1
			mustAppend(txnBatch(2, 0, 0, 1))                          // 2
			if err := p.WriteMarker(ctx, 1, 0, 0, true); err != nil { // 3
				t.Fatal(err)
			}
			mustAppend(txnBatch(2, 0, 1, 1))                           // 4
			if err := p.WriteMarker(ctx, 2, 0, 0, false); err != nil { // 5
				t.Fatal(err)
			}
			mustAppend(batch(-1, -1, -1, 1, 10)) // 6
			mustAppend(txnBatch(3, 0, 0, 1))     // 7
			mustAppend(batch(-1, -1, -1, 1, 10)) // 8
			want := "lso=7 ongoing=map[3:7] aborted=[{2 2 5}]"
			if got := txnState(p); got != want {
				t.Fatalf("state %s, want %s", got, want)
			}
			rr, lso, aborted, err := p.ReadCommitted(0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := rr.AppendTo(nil)
			rr.Release()
			var last int64
			var control int
			for len(b) > 0 {
				batch, rest, h, err := rb.Split(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.Control() {
					control++
					if typ, ok := controlType(batch, &h); !ok || !h.Transactional() || (h.ProducerID == 1) != (typ == ControlCommit) {
						t.Errorf("marker of producer %d: type %d %v", h.ProducerID, typ, ok)
					}
				}
				last, b = h.LastOffset(), rest
			}
			if lso != 7 || last != 6 || control != 2 || fmt.Sprint(aborted) != "[{2 2 5}]" {
				t.Fatalf("read_committed: lso %d, last offset %d, %d markers, aborted %v", lso, last, control, aborted)
			}
			if rr, _, aborted, _ := p.ReadCommitted(6, 1<<20); rr == nil || len(aborted) != 0 {
				t.Fatalf("read from 6: %v %v", rr, aborted)
			} else {
				rr.Release()
			}
			if rr, _, _, err := p.ReadCommitted(7, 1<<20); rr != nil || err != nil {
				t.Fatalf("read at the LSO returned data: %v", err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if mode == "no snapshot" {
				os.Remove(filepath.Join(datadir.New(dir).ProducerSnapshots(), "s-0.json"))
			}
			m = openManager(t, dir)
			tp, _ = m.Topic("s")
			p = tp.Partition(0)
			if got := txnState(p); got != want {
				t.Fatalf("after restart: state %s, want %s", got, want)
			}
			// Fencing: a marker with a bumped epoch refuses the old epoch afterwards.
			if err := p.WriteMarker(ctx, 3, 1, 0, false); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Append(txnBatch(3, 0, 1, 1)); err == nil {
				t.Fatal("a fenced epoch was appended")
			}
			if got := txnState(p); got != "lso=10 ongoing=map[] aborted=[{2 2 5} {3 7 9}]" {
				t.Fatalf("after abort: %s", got)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
