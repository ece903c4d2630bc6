package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Each segment has two sparse indexes, kept in memory while the segment is in
// use and written to files by the syncer (and on roll and close):
//
// Offset index, <base>.index: a sequence of 8-byte entries
//
//	offset  size  field
//	0       4     relative offset  uint32 big-endian, batch baseOffset - segment base
//	4       4     position         uint32 big-endian, byte position of that batch in <base>.log
//
// An entry is added for a batch at position p when p >= (position of the previous
// entry, or 0) + IndexIntervalBytes, so the index is a pure function of the segment
// bytes and the interval, and recovery rebuilds exactly what appends wrote.
// Entries are strictly increasing in both fields; lookups binary-search them.
//
// Time index, <base>.timeindex: a sequence of 12-byte entries
//
//	offset  size  field
//	0       8     timestamp        int64 big-endian: the largest maxTimestamp of the
//	                               segment's batches with offset < base+rel (-1 if none)
//	8       4     relative offset  uint32 big-endian
//
// A time entry is added with every offset-index entry (rel = that batch's base), and
// a final entry with rel = segment end - base (so timestamp = the segment's largest
// timestamp) is added when the segment rolls. Timestamps are non-decreasing and rel
// strictly increasing. To find the first batch with maxTimestamp >= ts, start at the
// last entry whose timestamp < ts: no earlier batch can qualify.
const (
	offsetEntryLen = 8
	timeEntryLen   = 12
)

type offsetEntry struct{ rel, pos uint32 }

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

func appendTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

// decodeOffsetIndex decodes and validates an offset index against its segment's
// size. It never trusts the bytes: any inconsistency is an error (and the caller
// rebuilds the index from the segment).
func decodeOffsetIndex(b []byte, segSize int64) ([]offsetEntry, error) {
	if len(b)%offsetEntryLen != 0 {
		return nil, fmt.Errorf("length %d is not a multiple of %d", len(b), offsetEntryLen)
	}
	es := make([]offsetEntry, len(b)/offsetEntryLen)
	for i := range es {
		e := offsetEntry{
			rel: binary.BigEndian.Uint32(b[i*offsetEntryLen:]),
			pos: binary.BigEndian.Uint32(b[i*offsetEntryLen+4:]),
		}
		if int64(e.pos) >= segSize || e.pos == 0 {
			return nil, fmt.Errorf("entry %d: position %d outside the segment (%d bytes)", i, e.pos, segSize)
		}
		if i > 0 && (e.rel <= es[i-1].rel || e.pos <= es[i-1].pos) {
			return nil, fmt.Errorf("entry %d: not increasing", i)
		}
		es[i] = e
	}
	return es, nil
}

func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeEntryLen != 0 {
		return nil, fmt.Errorf("length %d is not a multiple of %d", len(b), timeEntryLen)
	}
	es := make([]timeEntry, len(b)/timeEntryLen)
	for i := range es {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntryLen:])),
			rel: binary.BigEndian.Uint32(b[i*timeEntryLen+8:]),
		}
		if e.ts < -1 {
			return nil, fmt.Errorf("entry %d: timestamp %d", i, e.ts)
		}
		if i > 0 && (e.rel <= es[i-1].rel || e.ts < es[i-1].ts) {
			return nil, fmt.Errorf("entry %d: not increasing", i)
		}
		es[i] = e
	}
	return es, nil
}

// timeStartRel returns the relative offset from which to scan for the first batch
// with maxTimestamp >= ts: the rel of the last entry with timestamp < ts, else 0.
func timeStartRel(es []timeEntry, ts int64) uint32 {
	i := sort.Search(len(es), func(i int) bool { return es[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return es[i-1].rel
}
