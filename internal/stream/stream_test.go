package stream

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
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
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways}, cat)
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
		"control":     {appendControlBatch(nil, 5, 0, 0, true, 0), 1 << 20, ErrInvalidRecord},
		"transactional without producer": {func() []byte {
			b := batch(-1, -1, -1, 1, 10)
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
	rb.Stamp(b, singleLeaderEpoch, 123456)
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
	if _, err := m.CreateTopic("t", 1, map[string]string{"cleanup.policy": "compact,compact"}, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("compact twice: %v", err)
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

// TestUnknownDirectoriesKept: a partition directory the catalog does not describe, and that no
// deletion marked, is kept at start-up (it used to be removed); creating a topic of that name
// later moves it aside instead of serving its old records.
func TestUnknownDirectoriesKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	m.CreateTopic("keep", 1, nil, false)
	m.Close()
	unknown := filepath.Join(dir, "topics", "gone-0")
	if err := os.MkdirAll(unknown, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unknown, "precious"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := openManager(t, dir)
	defer m2.Close()
	if _, err := os.Stat(filepath.Join(unknown, "precious")); err != nil {
		t.Fatalf("unknown partition dir removed at start-up: %v", err)
	}
	if _, ok := m2.Topic("keep"); !ok {
		t.Fatal("kept topic lost")
	}
	if _, err := m2.CreateTopic("gone", 1, nil, false); err != nil {
		t.Fatalf("create over an unknown dir: %v", err)
	}
	moved, _ := filepath.Glob(unknown + ".orphan-*")
	if len(moved) != 1 {
		t.Fatalf("unknown dir not moved aside: %v", moved)
	}
	if b, err := os.ReadFile(filepath.Join(moved[0], "precious")); err != nil || string(b) != "x" {
		t.Fatalf("moved-aside content: %q %v", b, err)
	}
}

// TestMissingCatalogRefused: with partition data on disk and no catalog.json, Open refuses,
// naming the file, and deletes nothing (it used to remove every partition as an orphan).
func TestMissingCatalogRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	tp, _ := m.CreateTopic("orders", 2, nil, false)
	p := tp.Partition(0)
	r, err := p.Append(batch(-1, -1, -1, 3, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDurable(t.Context(), r.LastOffset); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := os.Remove(datadir.New(dir).Catalog()); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	if m2, err := Open(Config{Layout: datadir.New(dir)}, cat); err == nil {
		m2.Close()
		t.Fatal("Open with partitions on disk and no catalog succeeded")
	} else if !strings.Contains(err.Error(), "catalog.json is missing") {
		t.Fatalf("unclear error: %v", err)
	}
	for _, name := range []string{"orders-0", "orders-1"} {
		if _, err := os.Stat(filepath.Join(dir, "topics", name)); err != nil {
			t.Fatalf("%s gone after a refused start: %v", name, err)
		}
	}
}

// TestInterruptedDeletion: a tombstone whose topic the catalog no longer has is removed at
// start-up; one whose topic the catalog still has (the deletion never committed) is renamed
// back, with its records.
func TestInterruptedDeletion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	tp, _ := m.CreateTopic("live", 1, nil, false)
	id := tp.ID
	r, err := tp.Partition(0).Append(batch(-1, -1, -1, 5, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Partition(0).WaitDurable(t.Context(), r.LastOffset); err != nil {
		t.Fatal(err)
	}
	m.Close()
	topics := filepath.Join(dir, "topics")
	// The crash came after the rename and before the catalog write.
	if err := os.Rename(filepath.Join(topics, "live-0"), filepath.Join(topics, "live-0."+id.String()+".deleted")); err != nil {
		t.Fatal(err)
	}
	// A committed deletion of another topic whose tombstone was not removed yet.
	done := filepath.Join(topics, "dead-0."+catalog.NewUUID().String()+".deleted")
	if err := os.MkdirAll(done, 0o700); err != nil {
		t.Fatal(err)
	}
	m2 := openManager(t, dir)
	defer m2.Close()
	if _, err := os.Stat(done); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("committed deletion not finished: %v", err)
	}
	tp2, ok := m2.Topic("live")
	if !ok {
		t.Fatal("topic lost")
	}
	if end := tp2.Partition(0).EndOffset(); end != 5 {
		t.Fatalf("restored partition ends at %d, want 5", end)
	}
}

// TestFailedCreateLeavesNoDirectories: a creation that fails part-way removes the partitions
// it made and its catalog entry (they used to stay until a restart removed them).
func TestFailedCreateLeavesNoDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	defer m.Close()
	m.failOpen = func(topic string, p int32) error {
		if p == 37 {
			return errors.New("injected: too many open files")
		}
		return nil
	}
	if _, err := m.CreateTopic("big", 100, nil, false); err == nil {
		t.Fatal("create succeeded")
	}
	if _, ok := m.cat.Topic("big"); ok {
		t.Fatal("failed topic left in the catalog")
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "topics")); len(entries) != 0 {
		t.Fatalf("failed create left %d entries, e.g. %s", len(entries), entries[0].Name())
	}
	m.failOpen = nil
	if _, err := m.CreateTopic("grow", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	m.failOpen = func(topic string, p int32) error {
		if p == 5 {
			return errors.New("injected")
		}
		return nil
	}
	if err := m.CreatePartitions("grow", 10, false); err == nil {
		t.Fatal("create partitions succeeded")
	}
	if ct, _ := m.cat.Topic("grow"); ct.Partitions != 2 {
		t.Fatalf("catalog says %d partitions after a failed increase, want 2", ct.Partitions)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "topics")); len(entries) != 2 {
		t.Fatalf("failed increase left %d entries", len(entries))
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
	if err := m.IncrementalAlterTopicConfigs("c", []ConfigOp{{Name: "cleanup.policy", Op: OpAppend, Value: "compact"}}, false); err != nil {
		t.Fatalf("append: %v", err)
	}
	if c := tp.Config(); !c.Compact || !c.CleanupPolicyDel {
		t.Fatalf("after appending compact: %+v", c)
	}
}

// TestRetentionDeletesOldSegments: time retention through the manager drops old data.
func TestRetentionDeletesOldSegments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	cat, _ := catalog.Open(datadir.New(dir).Catalog())
	m, err := Open(Config{Layout: datadir.New(dir), Now: func() time.Time { return now }}, cat)
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
	if start := p.StartOffset(); start == 0 {
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
		rb.Stamp(b, singleLeaderEpoch, 42)
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
