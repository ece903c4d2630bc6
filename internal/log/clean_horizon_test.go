package log

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/recordbatch"
)

// TestCleanTombstoneHorizon (KIP-534): a tombstone goes delete.retention.ms after the first
// cleaning that kept it, whatever its own timestamp: that cleaning writes the horizon into
// its batch (attribute bit 6, base timestamp), the records keep their timestamps, and the
// first cleaning past the horizon removes it.
func TestCleanTombstoneHorizon(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = time.Hour.Milliseconds()
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	old := clock.Now().Add(-2 * time.Hour).UnixMilli() // older than delete.retention.ms
	mustAppend(t, l, keyedBatch(old, -1, 0, rec("a", "1"), rec("b", "1")))
	mustAppend(t, l, keyedBatch(old, -1, 0, tomb("a"), rec("c", "1")))
	appendUpdates(t, l, clock, 0, 12, 3)
	now := clock.Now().UnixMilli()
	mustClean(t, l, CleanConfig{})
	got, hs := readRecords(t, l)
	if r, ok := latestPerKey(got)["a"]; !ok || !r.tombstone {
		t.Fatalf("tombstone of a removed by the first cleaning that saw it: %+v", got)
	}
	i := slices.IndexFunc(hs, func(h recordbatch.Header) bool { return h.BaseOffset == 2 })
	if hz, set := hs[i].DeleteHorizon(); !set || hz != now+time.Hour.Milliseconds() || hs[i].MaxTimestamp != old {
		t.Fatalf("tombstone's batch: horizon %d %v, want %d; %+v", hz, set, now+time.Hour.Milliseconds(), hs[i])
	}
	if ts := recordTimestamps(t, l)[2]; ts != old {
		t.Fatalf("tombstone's timestamp %d after the horizon was written, want %d", ts, old)
	}
	j := slices.IndexFunc(hs, func(h recordbatch.Header) bool { return h.BaseOffset == 0 })
	if _, set := hs[j].DeleteHorizon(); set {
		t.Fatalf("a batch without tombstones got a horizon: %+v", hs[j])
	}
	clock.Advance(time.Hour - time.Millisecond)
	appendUpdates(t, l, clock, 12, 4, 3)
	mustClean(t, l, CleanConfig{Force: true})
	if got, _ := readRecords(t, l); !latestPerKey(got)["a"].tombstone {
		t.Fatalf("tombstone removed before its horizon: %+v", got)
	}
	clock.Advance(time.Millisecond)
	appendUpdates(t, l, clock, 16, 4, 3)
	mustClean(t, l, CleanConfig{Force: true})
	got, _ = readRecords(t, l)
	m := latestPerKey(got)
	if _, ok := m["a"]; ok {
		t.Fatalf("tombstone kept after its horizon: %+v", got)
	}
	if m["b"].value != "1" || m["c"].value != "1" || m["c"].offset != 3 {
		t.Fatalf("records lost with the tombstone: %+v", got)
	}
	if ts := recordTimestamps(t, l)[3]; ts != old {
		t.Fatalf("c's timestamp %d, want %d", ts, old)
	}
}

// recordTimestamps maps offsets to record timestamps (base timestamp + delta, as clients read).
func recordTimestamps(t *testing.T, l *Log) map[int64]int64 {
	t.Helper()
	out := map[int64]int64{}
	for _, b := range readAll(t, l) {
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := forEachRecord(b, &h, func(r *recordbatch.Record) {
			out[h.BaseOffset+int64(r.OffsetDelta)] = h.BaseTimestamp + r.TimestampDelta
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// compressedBatch is keyedBatch with its records compressed with c, timestamps ts, ts+1, ...
// and a header on each record.
func compressedBatch(t *testing.T, c recordbatch.Codec, ts int64, recs ...kv) []byte {
	h := recordbatch.NewHeader(int32(len(recs)), ts)
	h.MaxTimestamp = ts + int64(len(recs)) - 1
	h.Attributes = int16(c)
	var body []byte
	for i, r := range recs {
		rr := recordbatch.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: r.key, Value: r.value,
			Headers: []recordbatch.RecordHeader{{Key: []byte("h"), Value: []byte(fmt.Sprint(i))}}}
		body = rr.AppendTo(body)
	}
	b := recordbatch.AppendHeader(nil, &h)
	b, err := recordbatch.Compress(b, c, body)
	if err != nil {
		t.Fatal(err)
	}
	return recordbatch.Finish(b, 0)
}

// TestCleanRecompressesWithBatchCodec: a batch that loses records is rewritten with its own
// codec, as Kafka does; the records that stay decode to what was written (offsets,
// timestamps, headers); one that also keeps a tombstone gets its horizon with its codec.
func TestCleanRecompressesWithBatchCodec(t *testing.T) {
	for _, c := range []recordbatch.Codec{recordbatch.CodecGzip, recordbatch.CodecSnappy, recordbatch.CodecLZ4, recordbatch.CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			fsys, clock := NewMemFS(), newFakeClock()
			l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
			defer l.Close()
			ts := clock.Now().UnixMilli() - 10 // record timestamps ts, ts+1, ts+2: not in the future
			pad := string(make([]byte, 300))
			mustAppend(t, l, compressedBatch(t, c, ts, rec("a", "1"+pad), rec("b", "1"+pad), rec("c", "1"+pad))) // 0-2
			mustAppend(t, l, compressedBatch(t, c, ts, rec("d", "1"+pad), tomb("e"), rec("f", "1")))             // 3-5
			mustAppend(t, l, keyedBatch(ts, -1, 0, rec("b", "2"), rec("f", "2")))                                // 6-7
			appendUpdates(t, l, clock, 0, 12, 1)
			before := readAll(t, l)
			mustClean(t, l, CleanConfig{})
			var hs []recordbatch.Header
			type got struct {
				off, ts int64
				key     string
				value   string
				header  string
				null    bool
			}
			var rs []got
			for _, b := range readAll(t, l) {
				h, err := recordbatch.ParseHeader(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := recordbatch.CheckCRC(b); err != nil {
					t.Fatal(err)
				}
				hs = append(hs, h)
				if err := forEachRecord(b, &h, func(r *recordbatch.Record) {
					hv := ""
					if len(r.Headers) == 1 {
						hv = string(r.Headers[0].Key) + "=" + string(r.Headers[0].Value)
					}
					rs = append(rs, got{h.BaseOffset + int64(r.OffsetDelta), h.BaseTimestamp + r.TimestampDelta,
						string(r.Key), string(r.Value), hv, r.Value == nil})
				}); err != nil {
					t.Fatal(err)
				}
			}
			if hs[0].BaseOffset != 0 || hs[0].Codec() != c || hs[0].RecordCount != 2 || hs[0].LastOffsetDelta != 2 {
				t.Fatalf("first batch after cleaning: %+v, want codec %s, 2 records, offsets 0-2", hs[0], c)
			}
			if hs[1].BaseOffset != 3 || hs[1].Codec() != c || hs[1].RecordCount != 2 || hs[1].LastOffsetDelta != 2 {
				t.Fatalf("second batch after cleaning: %+v, want codec %s, 2 records, offsets 3-5", hs[1], c)
			}
			if hz, set := hs[1].DeleteHorizon(); !set || hz != clock.Now().UnixMilli()+DefaultDeleteRetentionMs {
				t.Fatalf("second batch keeps a tombstone: horizon %d %v", hz, set)
			}
			if hs[0].Length >= len(before[0]) {
				t.Fatalf("first batch: %d bytes after cleaning, %d before", hs[0].Length, len(before[0]))
			}
			want := []got{
				{0, ts, "a", "1" + pad, "h=0", false},
				{2, ts + 2, "c", "1" + pad, "h=2", false},
				{3, ts, "d", "1" + pad, "h=0", false},
				{4, ts + 1, "e", "", "h=1", true},
			}
			if !slices.Equal(rs[:4], want) {
				t.Fatalf("records after cleaning:\n%+v\nwant\n%+v", rs[:4], want)
			}
		})
	}
}
