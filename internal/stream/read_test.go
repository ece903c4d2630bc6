package stream

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// valuesBatch is a batch of records with the given values (compressed as codec says).
func valuesBatch(t *testing.T, codec rb.Codec, values ...string) []byte {
	var body []byte
	for i, v := range values {
		r := rb.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Value: []byte(v)}
		body = r.AppendTo(body)
	}
	if codec == rb.CodecZstd {
		e, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		body = e.EncodeAll(body, nil)
	}
	h := rb.NewHeader(int32(len(values)), 1000)
	h.Attributes = int16(codec)
	return rb.Finish(append(rb.AppendHeader(nil, &h), body...), 0)
}

func appendDurable(t *testing.T, p *Partition, b []byte) AppendResult {
	t.Helper()
	res, err := p.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(t.Context(), res.LastOffset); err != nil {
		t.Fatal(err)
	}
	return res
}

// readAll reads r to the high watermark, collecting "offset:value".
func readAll(t *testing.T, r *RecordReader, maxBytes int) []string {
	t.Helper()
	var got []string
	for {
		read, err := r.Read(maxBytes, func(rec *Record) bool {
			got = append(got, fmt.Sprintf("%d:%s", rec.Offset, rec.Value))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if !read {
			return got
		}
	}
}

func TestRecordReader(t *testing.T) {
	t.Parallel()
	m := openManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	appendDurable(t, p, valuesBatch(t, rb.CodecNone, "a", "b", "c"))
	appendDurable(t, p, valuesBatch(t, rb.CodecZstd, "d", "e"))

	// From the middle of a batch: the records before the position are skipped.
	r := p.NewRecordReader(1)
	if got := fmt.Sprint(readAll(t, r, 1)); got != "[1:b 2:c 3:d 4:e]" {
		t.Fatalf("read %s", got)
	}
	if r.Offset() != 5 {
		t.Fatalf("offset %d after reading to the end", r.Offset())
	}

	// A callback that stops leaves the record to be read again.
	r = p.NewRecordReader(0)
	n := 0
	if _, err := r.Read(1<<20, func(*Record) bool { n++; return n < 2 }); err != nil || r.Offset() != 1 {
		t.Fatalf("stopped at the second record: offset %d, %v", r.Offset(), err)
	}
	if got := fmt.Sprint(readAll(t, r, 1<<20)); got != "[1:b 2:c 3:d 4:e]" {
		t.Fatalf("after a stop, read %s", got)
	}

	// DeleteRecords moves the start; a reader behind it moves with it.
	if _, err := p.DeleteRecords(p.HighWatermark() + 1); !errors.Is(err, log.ErrOffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v", err)
	}
	low, err := p.DeleteRecords(3)
	if err != nil || low != 3 || p.StartOffset() != 3 {
		t.Fatalf("delete before 3: low %d, %v", low, err)
	}
	if got := fmt.Sprint(readAll(t, p.NewRecordReader(0), 1<<20)); got != "[3:d 4:e]" {
		t.Fatalf("after DeleteRecords, read %s", got)
	}
	if low, err := p.DeleteRecords(-1); err != nil || low != p.HighWatermark() {
		t.Fatalf("delete to the high watermark: low %d, %v", low, err)
	}
}

// A batch that inflates past the bound the topic's max.message.bytes now sets is an error the
// reader does not move past.
func TestRecordReaderRefusesBomb(t *testing.T) {
	t.Parallel()
	m := openManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("bomb", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	appendDurable(t, p, valuesBatch(t, rb.CodecNone, "ok"))
	appendDurable(t, p, valuesBatch(t, rb.CodecZstd, string(make([]byte, 12<<20))))
	if err := m.AlterTopicConfigs("bomb", map[string]string{"max.message.bytes": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	r := p.NewRecordReader(0)
	var got []int64
	_, err = r.Read(1<<20, func(rec *Record) bool { got = append(got, rec.Offset); return true })
	if !errors.Is(err, rb.ErrTooLarge) || len(got) != 1 || r.Offset() != 1 {
		t.Fatalf("records %v, offset %d, err %v", got, r.Offset(), err)
	}
}

func TestChangesWakesOnAnyPartition(t *testing.T) {
	t.Parallel()
	m := openManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("w", 3, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var c Changes
	for _, n := range []int{1, 3} { // one partition (no reflection) and several
		c.Reset()
		for i := range n {
			c.Add(tp.Partition(int32(i)))
		}
		b := valuesBatch(t, rb.CodecNone, "x")
		errc := make(chan error, 1)
		go func() { _, err := tp.Partition(int32(n - 1)).Append(b); errc <- err }()
		if c.Wait(nil, nil) {
			t.Fatal("stopped without done")
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	close(done)
	c.Reset()
	c.Add(tp.Partition(0))
	c.Add(tp.Partition(1))
	if !c.Wait(done, nil) {
		t.Fatal("not stopped by done")
	}
	timer := time.NewTimer(time.Millisecond)
	defer timer.Stop()
	if c.Wait(nil, timer.C) {
		t.Fatal("stopped by a timer")
	}
}

func TestSingleNode(t *testing.T) {
	t.Parallel()
	m := openManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("n", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	if n := m.Node(); n.ID() != 0 || n.Leader(p) != 0 || n.LeaderEpoch(p) != 0 || p.LeaderEpoch() != 0 {
		t.Fatalf("node %d, leader %d, epoch %d", n.ID(), n.Leader(p), n.LeaderEpoch(p))
	}
}
