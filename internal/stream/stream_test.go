package stream

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// batch builds a v2 batch of count records whose encoding is about bodyLen bytes in all,
// with a valid CRC.
func batch(pid int64, epoch int16, seq int32, count int32, bodyLen int) []byte {
	h := rb.NewHeader(count, 1000)
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, epoch, seq
	b := rb.AppendHeader(nil, &h)
	per := bodyLen / max(int(count), 1)
	for i := range count {
		v := make([]byte, max(per-8, 0))
		for k := range v {
			v[k] = byte(k)
		}
		r := rb.Record{OffsetDelta: i, Value: v}
		b = r.AppendTo(b)
	}
	return rb.Finish(b, 0)
}

func openManager(t *testing.T, dir string) *Manager {
	t.Helper()
	cat, err := catalog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{DataDir: dir, SyncPolicy: log.SyncAlways}, cat)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidateProducedBatch(t *testing.T) {
	t.Parallel()
	good := batch(-1, -1, -1, 3, 40)
	if _, err := validateProducedBatch(good, 1<<20); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		b    []byte
		max  int
		want error
	}{
		"empty":       {nil, 1 << 20, ErrInvalidRecord},
		"short":       {good[:30], 1 << 20, ErrCorruptBatch},
		"truncated":   {good[:len(good)-1], 1 << 20, ErrCorruptBatch},
		"two batches": {append(append([]byte(nil), good...), good...), 1 << 20, ErrInvalidRecord},
		"too large":   {good, 50, ErrMessageTooLarge},
		"bad crc":     {func() []byte { b := append([]byte(nil), good...); b[len(b)-1]++; return b }(), 1 << 20, ErrCorruptBatch},
		"magic 1":     {func() []byte { b := append([]byte(nil), good...); b[rb.OffMagic] = 1; return b }(), 1 << 20, ErrInvalidRecord},
		"count 0":     {batch(-1, -1, -1, 0, 10), 1 << 20, ErrCorruptBatch},
		"transactional": {func() []byte {
			b := batch(5, 0, 0, 1, 10)
			b[rb.OffAttributes+1] |= rb.AttrTransactional
			binary.BigEndian.PutUint32(b[rb.OffCRC:], rb.Checksum(b))
			return b
		}(), 1 << 20, ErrInvalidRecord},
	}
	for name, c := range cases {
		if _, err := validateProducedBatch(c.b, c.max); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}

func TestStampLogAppendTimeKeepsCRCValid(t *testing.T) {
	t.Parallel()
	b := batch(-1, -1, -1, 2, 20)
	rb.Stamp(b, leaderEpoch, 123456)
	if _, err := validateProducedBatch(b, 1<<20); err != nil {
		t.Fatalf("stamped batch invalid: %v", err)
	}
	h, _ := rb.ParseHeader(b)
	if h.MaxTimestamp != 123456 || h.Attributes&rb.AttrLogAppendTime == 0 {
		t.Fatalf("not stamped: %+v", h)
	}
}

func TestSequenceWrap(t *testing.T) {
	t.Parallel()
	if got := addSeq(0x7fffffff, 1); got != 0 {
		t.Fatalf("wrap: %d", got)
	}
	if got := addSeq(0x7ffffffe, 3); got != 1 {
		t.Fatalf("wrap: %d", got)
	}
}

func TestTopicLifecycleAndIdempotence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	if _, err := m.CreateTopic("a/b", 1, nil, false); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := m.CreateTopic("t", 0, nil, false); !errors.Is(err, ErrInvalidPartitions) {
		t.Fatalf("0 partitions: %v", err)
	}
	if _, err := m.CreateTopic("t", 1, map[string]string{"cleanup.policy": "compact"}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("compact: %v", err)
	}
	tp, err := m.CreateTopic("t", 2, map[string]string{"message.timestamp.type": "LogAppendTime"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(1)
	res, err := p.Append(batch(9, 0, 0, 2, 10))
	if err != nil || res.BaseOffset != 0 || res.LogAppendTime < 0 {
		t.Fatalf("append: %+v %v", res, err)
	}
	if err := p.WaitDurable(t.Context(), res.LastOffset); err != nil {
		t.Fatal(err)
	}
	if dup, err := p.Append(batch(9, 0, 0, 2, 10)); err != nil || !dup.Duplicate || dup.BaseOffset != 0 || dup.LogAppendTime != res.LogAppendTime {
		t.Fatalf("duplicate: %+v %v", dup, err)
	}
	if _, err := p.Append(batch(9, 0, 5, 1, 10)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := p.Append(batch(9, 1, 3, 1, 10)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	if r, err := p.Append(batch(9, 1, 0, 1, 10)); err != nil || r.BaseOffset != 2 {
		t.Fatalf("new epoch: %+v %v", r, err)
	}
	if _, err := p.Append(batch(9, 0, 2, 1, 10)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
	if err := m.CreatePartitions("t", 3, false); err != nil || tp.NumPartitions() != 3 {
		t.Fatalf("grow: %v", err)
	}
	id1, _ := m.AllocateProducerID()
	id2, _ := m.AllocateProducerID()
	if id2 != id1+1 {
		t.Fatalf("producer ids %d %d", id1, id2)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen: topics, partitions, producer state and the producer ID allocator survive.
	m2 := openManager(t, dir)
	defer m2.Close()
	tp2, ok := m2.Topic("t")
	if !ok || tp2.ID != tp.ID || tp2.NumPartitions() != 3 || !tp2.Config().LogAppendTime {
		t.Fatalf("reopened topic %+v", tp2)
	}
	if dup, err := tp2.Partition(1).Append(batch(9, 1, 0, 1, 10)); err != nil || !dup.Duplicate || dup.BaseOffset != 2 {
		t.Fatalf("duplicate after reopen: %+v %v", dup, err)
	}
	if id3, _ := m2.AllocateProducerID(); id3 <= id2 {
		t.Fatalf("producer id reused: %d after %d", id3, id2)
	}
	if err := m2.DeleteTopic("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "topics", "t-0")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partition dir left after delete: %v", err)
	}
}

func TestOrphanDirectoriesRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	m.CreateTopic("keep", 1, nil, false)
	m.Close()
	orphan := filepath.Join(dir, "topics", "gone-0")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	m2 := openManager(t, dir)
	defer m2.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("orphan partition dir not removed")
	}
	if _, ok := m2.Topic("keep"); !ok {
		t.Fatal("kept topic lost")
	}
}

func TestConfigResolution(t *testing.T) {
	t.Parallel()
	m := openManager(t, t.TempDir())
	defer m.Close()
	m.CreateTopic("c", 1, map[string]string{"retention.ms": "1000"}, false)
	if err := m.IncrementalAlterBrokerConfigs([]ConfigOp{{Name: "log.retention.bytes", Op: OpSet, Value: "4096"}}, false); err != nil {
		t.Fatal(err)
	}
	if err := m.IncrementalAlterBrokerConfigs([]ConfigOp{{Name: "retention.bytes", Op: OpSet, Value: "1"}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("topic name as broker config: %v", err)
	}
	tp, _ := m.Topic("c")
	if c := tp.Config(); c.RetentionMs != 1000 || c.RetentionBytes != 4096 || c.MaxMessageBytes != 1048588 {
		t.Fatalf("effective %+v", c)
	}
	if err := m.IncrementalAlterTopicConfigs("c", []ConfigOp{{Name: "retention.ms", Op: OpDelete}}, false); err != nil {
		t.Fatal(err)
	}
	if c := tp.Config(); c.RetentionMs != 604800000 {
		t.Fatalf("after delete: %+v", c)
	}
	if err := m.IncrementalAlterTopicConfigs("c", []ConfigOp{{Name: "cleanup.policy", Op: OpAppend, Value: "compact"}}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("append: %v", err)
	}
}

// TestRetentionDeletesOldSegments: time retention through the manager drops old data.
func TestRetentionDeletesOldSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	cat, _ := catalog.Open(dir)
	m, err := Open(Config{DataDir: dir, Now: func() time.Time { return now }}, cat)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tp, err := m.CreateTopic("r", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "60000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	for i := 0; i < 20; i++ {
		b := batch(-1, -1, -1, 1, 200)
		binary.BigEndian.PutUint64(b[rb.OffBaseTimestamp:], uint64(now.UnixMilli()))
		binary.BigEndian.PutUint64(b[rb.OffMaxTimestamp:], uint64(now.UnixMilli()))
		binary.BigEndian.PutUint32(b[rb.OffCRC:], rb.Checksum(b))
		r, err := p.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		p.WaitDurable(t.Context(), r.LastOffset)
	}
	idem := batch(5, 0, 0, 1, 10)
	binary.BigEndian.PutUint64(idem[rb.OffBaseTimestamp:], uint64(now.UnixMilli()))
	binary.BigEndian.PutUint64(idem[rb.OffMaxTimestamp:], uint64(now.UnixMilli()))
	binary.BigEndian.PutUint32(idem[rb.OffCRC:], rb.Checksum(idem))
	if _, err := p.Append(idem); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	m.EnforceRetention()
	if start := p.Log().StartOffset(); start == 0 {
		t.Fatal("retention deleted nothing")
	}
	if len(p.producers) != 1 {
		t.Fatal("producer forgotten before its expiry")
	}
	now = now.Add(25 * time.Hour)
	m.EnforceRetention()
	if len(p.producers) != 0 {
		t.Fatal("idle producer not expired")
	}
}

// FuzzValidateProducedBatch: arbitrary bytes never panic the produce-path decoder, and an
// accepted batch stays valid after stamping.
func FuzzValidateProducedBatch(f *testing.F) {
	f.Add(batch(-1, -1, -1, 1, 10), 1<<20)
	f.Add(batch(3, 0, 7, 5, 100), 200)
	f.Add([]byte{}, 10)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		h, err := validateProducedBatch(b, max)
		if err != nil {
			return
		}
		if h.Length != len(b) {
			t.Fatalf("accepted length %d for %d bytes", h.Length, len(b))
		}
		rb.Stamp(b, leaderEpoch, 42)
		if _, err := validateProducedBatch(b, max); err != nil {
			t.Fatalf("stamped batch no longer valid: %v", err)
		}
	})
}

// FuzzBatchRecords: the record walker never panics on arbitrary batch bytes, under any codec
// bits, and never reports an offset delta outside the batch.
func FuzzBatchRecords(f *testing.F) {
	f.Add(batch(-1, -1, -1, 2, 30))
	withCodec := func(c int16, body []byte) []byte {
		h := rb.NewHeader(1, 1000)
		h.Attributes = c
		return rb.Finish(append(rb.AppendHeader(nil, &h), body...), 0)
	}
	for c := int16(1); c <= 4; c++ {
		f.Add(withCodec(c, []byte("not compressed at all")))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := rb.ParseHeader(b)
		_ = batchRecords(b, 1<<20, func(od int32, _ int64) bool {
			if err != nil || od < 0 || od > h.LastOffsetDelta {
				t.Fatalf("offset delta %d outside [0, %d]", od, h.LastOffsetDelta)
			}
			return true
		})
	})
}
