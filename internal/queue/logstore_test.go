package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTestQueue(t *testing.T, dir string) *Queue {
	t.Helper()
	s, err := OpenLogStore(dir, LogStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New("q", Options{Durable: true, Store: s})
}

func pub(t *testing.T, q *Queue, body string, persistent bool) {
	t.Helper()
	w, err := q.Publish(&Message{Exchange: "x", RoutingKey: "k", Properties: []byte{0x10, 0, 2}, Body: []byte(body), Persistent: persistent})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// getAll drains ready messages with basic.get semantics (no ack yet).
func getAll(t *testing.T, q *Queue) []Delivery {
	t.Helper()
	var out []Delivery
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, remaining, ok, err := q.Get(false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, d)
		}
		if !ok && remaining == 0 {
			r, _, _ := q.Counts()
			if r == 0 {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue says %d ready but Get finds none", r)
			}
			time.Sleep(time.Millisecond) // waiting for the log's high watermark
		}
	}
}

func TestLogStoreSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir)
	for i := range 10 {
		pub(t, q, fmt.Sprint(i), i != 3) // message 3 is transient
	}
	ds := getAll(t, q)
	if len(ds) != 10 {
		t.Fatalf("got %d messages, want 10", len(ds))
	}
	q.Ack(ds[0].ID, ds[1].ID)         // settled: gone after restart
	q.Requeue(ds[5].ID)               // requeued: back at its position
	if err := q.Close(); err != nil { // 2,4,6.. stay unacked: redelivered after restart
		t.Fatal(err)
	}
	q = openTestQueue(t, dir)
	defer q.Close()
	if r, _, _ := q.Counts(); r > 8 || r < 7 {
		t.Fatalf("ready after reopen = %d, want 7 (8 counting the transient one)", r)
	}
	ds = getAll(t, q)
	var got []string
	for _, d := range ds {
		s := string(d.Message.Body)
		if d.Redelivered {
			s += "*"
		}
		if d.Message.Exchange != "x" || d.Message.RoutingKey != "k" || string(d.Message.Properties) != "\x10\x00\x02" {
			t.Fatalf("message %s lost its envelope: %+v", s, d.Message)
		}
		got = append(got, s)
	}
	want := "[2* 4* 5* 6* 7* 8* 9*]"
	if fmt.Sprint(got) != want {
		t.Fatalf("after reopen got %v, want %v", got, want)
	}
}

func TestLogStorePagesDeepQueue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir)
	defer q.Close()
	body := make([]byte, 1024)
	n := 3 * readyWindowBytes / 1024
	for i := range n {
		copy(body, fmt.Sprintf("%08d", i))
		if _, err := q.Publish(&Message{Body: append([]byte(nil), body...), Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	q.mu.Lock()
	inMem := q.readyBytes
	q.mu.Unlock()
	if inMem > readyWindowBytes {
		t.Fatalf("%d bytes of ready messages in memory, window is %d", inMem, readyWindowBytes)
	}
	if r, _, _ := q.Counts(); r != n {
		t.Fatalf("ready = %d, want %d", r, n)
	}
	ds := getAll(t, q)
	if len(ds) != n {
		t.Fatalf("got %d, want %d", len(ds), n)
	}
	for i, d := range ds {
		if want := fmt.Sprintf("%08d", i); string(d.Message.Body[:8]) != want {
			t.Fatalf("message %d is %q, want %q", i, d.Message.Body[:8], want)
		}
		q.Ack(d.ID)
	}
	// Everything settled: nothing comes back after a reopen. (The disk goes back a whole
	// segment at a time, once the active one rolls: TestLogStoreReclaimsWholeSegments.)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenLogStore(dir, LogStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r := s.Recovered(); r.Live != 0 || r.Next != uint64(n) {
		t.Fatalf("after acking every message and reopening: %+v, want nothing live of %d", r, n)
	}
}

// TestLogStoreReclaimsWholeSegments: once every message of a segment is settled the segment is
// deleted, and the log start moves only to segment boundaries (each move costs a checkpoint
// fsync under the log's sync lock, which publisher confirms wait behind).
func TestLogStoreReclaimsWholeSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := OpenLogStore(dir, LogStoreOptions{SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	const n = 200 // about 13 segments of 16 KiB
	for i := range n {
		pub(t, q, strings.Repeat("x", 1000)+fmt.Sprint(i), true)
	}
	segments := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "messages", "*.log"))
		return len(m)
	}
	before := segments()
	if before < 10 {
		t.Fatalf("%d message segments, want at least 10", before)
	}
	for _, d := range getAll(t, q) {
		q.Ack(d.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for segments() > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d message segments left after every message was acked, want 1 (the active one)", segments(), before)
		}
		time.Sleep(time.Millisecond)
	}
	start := s.msgs.StartOffset()
	if start == 0 || s.msgs.SegmentBase(start) != start {
		t.Fatalf("log start %d, want the base of the active segment", start)
	}
}

func TestLogStorePurgeSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir)
	for i := range 5 {
		pub(t, q, fmt.Sprint(i), true)
	}
	if n := q.Purge(); n != 5 {
		t.Fatalf("purged %d, want 5", n)
	}
	pub(t, q, "after", true)
	q.Close()
	q = openTestQueue(t, dir)
	defer q.Close()
	ds := getAll(t, q)
	if len(ds) != 1 || string(ds[0].Message.Body) != "after" || ds[0].Redelivered {
		t.Fatalf("after purge and reopen got %+v", ds)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	m := &Message{Exchange: "ex", RoutingKey: "rk", Properties: []byte{1, 2}, Body: []byte("body"), Persistent: true}
	b := appendBatch(nil, 42, appendMessageValue(nil, m, 1<<40))
	_, ts, v, rest, err := nextBatch(b)
	if err != nil || ts != 42 || len(rest) != 0 {
		t.Fatalf("nextBatch: %v ts=%d rest=%d", err, ts, len(rest))
	}
	got, before, ok, err := decodeMessageValue(v)
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(*m) || before != 1<<40 || !ok {
		t.Fatalf("round trip: %v %+v before %d", err, got, before)
	}
	// The write path encodes in place (beginBatch, appendMessageValue, endBatch) with the
	// value's length computed ahead: it must give the same bytes, at every varint width.
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 21} {
		big := &Message{Exchange: strings.Repeat("e", n%300), RoutingKey: strings.Repeat("k", n%200),
			Properties: make([]byte, n%129), Body: make([]byte, n)}
		for _, before := range []uint64{0, 127, 128, 1 << 40} {
			want := appendBatch(nil, 7, appendMessageValue(nil, big, before))
			got, start := beginBatch(nil, 7, messageValueLen(big, before))
			got = endBatch(appendMessageValue(got, big, before), start)
			if !bytes.Equal(got, want) {
				t.Fatalf("in-place batch of a %d-byte body, before %d, differs from appendBatch", n, before)
			}
		}
	}
	// A message of an earlier build (version 1) still decodes, without "before".
	v1 := append([]byte{recordVersion}, appendMessageValue(nil, m, 0)[1:]...)
	v1 = append(v1[:2], v1[3:]...) // drop the one-byte uvarint 0
	if got, _, ok, err := decodeMessageValue(v1); err != nil || ok || fmt.Sprint(*got) != fmt.Sprint(*m) {
		t.Fatalf("version 1 message: %v %v %+v", err, ok, got)
	}
	pairs := [][2]uint64{{3, 1024}, {7, 0}, {100, 1 << 33}}
	for _, v := range [][]byte{appendSettledValue(nil, []uint64{3, 7, 100}), appendDeliveredValue(nil, 9), appendRangeValue(nil, 4, 5),
		appendPairsValue(nil, ackSized, pairs), appendPairsValue(nil, ackCounts, pairs)} {
		e, err := decodeAckValue(v)
		if err != nil {
			t.Fatalf("decodeAckValue(%x): %v", v, err)
		}
		if e.kind == ackSized || e.kind == ackCounts {
			if fmt.Sprint(e.seqs, e.vals) != "[3 7 100] [1024 0 8589934592]" {
				t.Fatalf("pairs decode as %v %v", e.seqs, e.vals)
			}
		}
	}
}

func FuzzQueueRecords(f *testing.F) {
	m := &Message{Exchange: "ex", RoutingKey: "rk", Properties: []byte{1, 2}, Body: []byte("body")}
	f.Add(appendBatch(nil, 1, appendMessageValue(nil, m, 77)))
	f.Add(appendBatch(nil, 1, appendPairsValue(nil, ackSized, [][2]uint64{{1, 5}, {4, 0}})))
	f.Add(appendBatch(nil, 1, appendPairsValue(nil, ackCounts, [][2]uint64{{2, 3}})))
	f.Add(appendBatch(nil, 1, appendSettledValue(nil, []uint64{1, 2, 9})))
	f.Add(appendBatch(nil, 1, appendRangeValue(nil, 1, 2)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			_, _, v, rest, err := nextBatch(b)
			if err != nil {
				return
			}
			if len(rest) >= len(b) {
				t.Fatal("nextBatch did not advance")
			}
			b = rest
			if m, before, _, err := decodeMessageValue(v); err == nil {
				again, b2, _, err := decodeMessageValue(appendMessageValue(nil, m, before))
				if err != nil || fmt.Sprint(*again) != fmt.Sprint(*m) || b2 != before {
					t.Fatalf("message does not round-trip: %v", err)
				}
			}
			if e, err := decodeAckValue(v); err == nil && e.kind != ackDelivered && e.kind != ackRange && e.kind != ackReset {
				if len(e.vals) != 0 && len(e.vals) != len(e.seqs) {
					t.Fatalf("%d values for %d positions", len(e.vals), len(e.seqs))
				}
				for i := 1; i < len(e.seqs); i++ {
					if e.seqs[i] < e.seqs[i-1] {
						return // overflowed deltas are the encoder's contract, not the decoder's
					}
				}
			}
		}
	})
}

// A settlement can reach the disk while the message it settles does not (two logs, two
// fsyncs). The position is then reused by the next message, which must not be taken for
// settled after the restart after that.
func TestLogStoreStaleSettlementDoesNotSettleReusedPosition(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := OpenLogStore(dir, LogStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// As if message 0 was published, delivered and acked, and only the ack survived a crash.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Settle([]uint64{0}, []uint64{5}))
	must(s.SettleRange(1, 5))
	s.Delivered(9)
	must(s.Close())
	q := openTestQueue(t, dir)
	if r, _, _ := q.Counts(); r != 0 {
		t.Fatalf("ready %d, want 0", r)
	}
	for _, b := range []string{"reused-0", "reused-1", "reused-2"} {
		pub(t, q, b, true)
	}
	must(q.Close())
	q = openTestQueue(t, dir)
	defer q.Close()
	ds := getAll(t, q)
	var got []string
	for _, d := range ds {
		s := string(d.Message.Body)
		if d.Redelivered {
			s += "*"
		}
		got = append(got, s)
	}
	if fmt.Sprint(got) != "[reused-0 reused-1 reused-2]" {
		t.Fatalf("after the stale settlements: %v, want all three, not redelivered", got)
	}
}

// TestSpilledTailDeliversFromMemory: messages published while a queue reads back from disk
// are kept in memory too (lane.tail, up to tailBytesMax), so once the disk part ahead of
// them is read they are delivered from memory at once, without waiting to be written and
// fsynced. Here nothing is ever written (flush timer of an hour, nobody waits for a confirm),
// so every message past the in-memory window can only come from the tail.
func TestSpilledTailDeliversFromMemory(t *testing.T) {
	t.Parallel()
	q := New("q", Options{Durable: true, Store: openStore(t, t.TempDir(), time.Hour)})
	defer q.Close()
	body := make([]byte, 1021) // + 3 bytes of properties: 1 KiB
	n := readyWindowBytes/1024 + 200
	for i := range n {
		copy(body, fmt.Sprintf("%08d", i))
		if _, err := q.Publish(&Message{Properties: []byte{0x10, 0, 2}, Body: append([]byte(nil), body...), Persistent: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		d, _, ok, err := q.Get(true)
		if err != nil || !ok {
			t.Fatalf("get %d of %d: ok=%v err=%v, want it from memory at once", i, n, ok, err)
		}
		if want := fmt.Sprintf("%08d", i); string(d.Message.Body[:8]) != want {
			t.Fatalf("message %d is %q, want %q", i, d.Message.Body[:8], want)
		}
	}
}

// TestUnreadableMessageIsLogged: a message record the queue cannot decode stops its lane; the
// queue says so in the log (once), instead of looking merely idle.
func TestUnreadableMessageIsLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q := openTestQueue(t, dir)
	for i := range 3 {
		pub(t, q, fmt.Sprint("m", i), true)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// Spoil the second message (opening reads the first and the last). Its record's value
	// starts after the 61-byte batch header and six one-byte fields (record length,
	// attributes, timestamp and offset deltas, key and value lengths); its first byte is the
	// encoding version.
	seg := filepath.Join(dir, "messages", "00000000000000000000.log")
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	at := 12 + int(binary.BigEndian.Uint32(b[8:12])) + 67
	if b[at] != recordVersion && b[at] != messageVersion {
		t.Fatalf("byte %d is %d, not a record version: the layout changed", at, b[at])
	}
	b[at] = 0xff
	if err := os.WriteFile(seg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	s, err := OpenLogStore(dir, LogStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q = New("q", Options{Durable: true, Store: s, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	defer q.Close()
	if d, _, ok, _ := q.Get(true); !ok || string(d.Message.Body) != "m0" {
		t.Fatalf("first message: %v %v, want m0", d.Message, ok)
	}
	for range 3 {
		if _, _, ok, _ := q.Get(true); ok {
			t.Fatal("got a message past an unreadable record")
		}
	}
	if n := strings.Count(logged.String(), "cannot read queue messages back"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logged.String())
	}
}
