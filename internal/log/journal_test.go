package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// journaledPair is two unsynced logs whose appends are made durable by one journal.
type journaledPair struct {
	logs [2]*Log
	j    *Journal
}

func openJournaled(t *testing.T, fsys FS) *journaledPair {
	t.Helper()
	p := &journaledPair{}
	for i := range p.logs {
		p.logs[i] = mustOpen(t, fmt.Sprintf("/d/p%d", i), Options{FS: fsys, SyncPolicy: SyncNever, SegmentBytesMax: 2000})
	}
	j, err := OpenJournal("/d/journal", Options{FS: fsys, SyncPolicy: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	p.j = j
	// Recovery: re-append what the logs lost, by offset.
	if err := j.Replay(func(id []byte, first int64, batch []byte) error {
		l := p.logs[id[0]]
		switch end := l.EndOffset(); {
		case first < end:
			return nil
		case first > end:
			return fmt.Errorf("gap in log %d: entry at %d, end %d", id[0], first, end)
		}
		_, err := l.AppendCheckedNoWait(append([]byte(nil), batch...))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *journaledPair) close() {
	for _, l := range p.logs {
		l.Close()
	}
	p.j.Close()
}

// append writes a batch to log i and journals it; it returns the journal offset to wait for.
func (p *journaledPair) append(t *testing.T, i int, b []byte) int64 {
	t.Helper()
	res, err := p.logs[i].AppendNoWait(b)
	if err != nil {
		t.Fatal(err)
	}
	off, err := p.j.Append([]byte{byte(i)}, res.BaseOffset, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return off
}

// TestJournalCrash: every batch acknowledged after the journal's fsync is in its log after
// a crash that keeps any part of what was not fsynced, the logs themselves never fsynced;
// nothing is duplicated, and a released journal still recovers what follows.
func TestJournalCrash(t *testing.T) {
	t.Parallel()
	for round := range 40 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		fsys := NewMemFS()
		p := openJournaled(t, fsys)
		var acked [2][][]byte
		for k := range 30 {
			i := rng.IntN(2)
			b := makeBatch(rng.IntN(3)+1, 50, int64(k), byte(k))
			off := p.append(t, i, b)
			if rng.IntN(2) == 0 {
				if err := p.j.WaitDurable(context.Background(), off); err != nil {
					t.Fatal(err)
				}
			}
			acked[i] = append(acked[i], append([]byte(nil), b...))
			if k == 15 {
				// What a background flush does: fsync the logs, then release the journal.
				end := p.j.End()
				for _, l := range p.logs {
					if err := l.Sync(); err != nil {
						t.Fatal(err)
					}
				}
				if err := p.j.Release(end); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The last append is acknowledged: one journal fsync covers every log's batches.
		if err := p.j.WaitDurable(context.Background(), p.j.End()-1); err != nil {
			t.Fatal(err)
		}
		crashed := fsys.Crash(func(n int) int { return rng.IntN(n + 1) })
		p.close()
		q := openJournaled(t, crashed)
		for i, l := range q.logs {
			checkBatches(t, readAll(t, l), acked[i])
		}
		// Replaying again (a crash during recovery) changes nothing.
		q.close()
		r := openJournaled(t, crashed)
		for i, l := range r.logs {
			checkBatches(t, readAll(t, l), acked[i])
		}
		r.close()
	}
}

// TestJournalTornTail: a batch journaled but never fsynced may be torn by a crash; the
// journal cuts the tail and keeps every entry before it.
func TestJournalTornTail(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	p := openJournaled(t, fsys)
	b0 := makeBatch(2, 50, 1, 1)
	if err := p.j.WaitDurable(context.Background(), p.append(t, 0, b0)); err != nil {
		t.Fatal(err)
	}
	p.append(t, 1, makeBatch(2, 50, 2, 2)) // never waited for
	half := 0
	crashed := fsys.Crash(func(n int) int { half = n / 2; return half })
	p.close()
	q := openJournaled(t, crashed)
	defer q.close()
	checkBatches(t, readAll(t, q.logs[0]), [][]byte{b0})
	if got := readAll(t, q.logs[1]); len(got) != 0 {
		t.Fatalf("log 1 holds %d batches after its torn journal entry, want 0", len(got))
	}
	if q.j.End() != 1 {
		t.Fatalf("journal end %d after a torn tail, want 1", q.j.End())
	}
}

// TestJournalFailedSync: a failed journal fsync fails the wait (nothing is acknowledged).
func TestJournalFailedSync(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	p := openJournaled(t, fsys)
	defer p.close()
	off := p.append(t, 0, makeBatch(1, 50, 1, 1))
	fsys.FailNextSync(syscall.EIO)
	if err := p.j.WaitDurable(context.Background(), off); !errors.Is(err, syscall.EIO) {
		t.Fatalf("wait with a failing journal fsync: %v", err)
	}
}

func TestJournalEntryRoundTrip(t *testing.T) {
	batch := makeBatch(2, 30, 5, 3)
	enc := AppendJournalEntry(nil, []byte("topic-id/3"), 42, batch, 9)
	n := 0
	next, err := DecodeJournalEntries(enc, func(id []byte, first int64, b []byte) error {
		n++
		if string(id) != "topic-id/3" || first != 42 || !bytes.Equal(b, batch) {
			t.Fatalf("decoded %q %d %d bytes", id, first, len(b))
		}
		return nil
	})
	if err != nil || n != 1 || next != 1 {
		t.Fatalf("decode: %d entries, next %d, %v", n, next, err)
	}
	if _, err := DecodeJournalEntries(enc[:len(enc)-1], func([]byte, int64, []byte) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("a partial entry: %d entries, %v", n, err)
	}
}

// FuzzDecodeJournalEntries: arbitrary bytes decode to entries or an error, never a panic,
// and every entry decoded re-encodes to the same bytes.
func FuzzDecodeJournalEntries(f *testing.F) {
	enc := AppendJournalEntry(nil, []byte{7}, 3, makeBatch(1, 20, 1, 1), 1)
	enc = AppendJournalEntry(enc, []byte("abc"), 0, makeBatch(2, 10, 1, 2), 1)
	f.Add(enc)
	f.Add(enc[:len(enc)-3])
	f.Add([]byte("not a journal"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeJournalEntries(b, func(id []byte, first int64, batch []byte) error {
			if len(id) == 0 || first < 0 {
				t.Fatalf("entry with id %q first %d", id, first)
			}
			return nil
		})
	})
}
