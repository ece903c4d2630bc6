package log

// Journal: a node-wide write-ahead journal that makes appends to many logs durable with one
// fsync. A writer appends a batch to its (unsynced) log, then journals it here and waits for
// the journal's group commit instead of that log's own fsync; the logs are fsynced lazily,
// and a journal segment is released once every log it covers is fsynced past it (Release).
// After a crash, Replay hands back every entry still in the journal; the owner re-appends the
// ones whose first offset is at or past its log's end (idempotent by offset), before anything
// is served. internal/group's offsets journal is this format with id = uint32 partition;
// internal/stream's produce journal (--kafka-journal) with id = 16-byte topic ID | int32
// partition, its logs under SyncJournal (readers see what MarkDurable declared durable).
//
// The journal is itself a Log (own segments, own torn-tail recovery). Each entry is one
// RecordBatch v2, uncompressed, holding one record without headers; the batch's CRC-32C
// covers the entry, and recovery cuts a torn or corrupt tail as for any log:
//
//	batch   RecordBatch v2 header (61 bytes: baseOffset int64 = journal offset, length int32,
//	        leaderEpoch int32, magic int8 = 2, crc uint32 (CRC-32C of attributes..end),
//	        attributes int16 = 0, lastOffsetDelta int32 = 0, baseTimestamp int64,
//	        maxTimestamp int64, producerId int64 = -1, producerEpoch int16 = -1,
//	        baseSequence int32 = -1, recordCount int32 = 1)
//	record  varint length, int8 attributes, varint timestampDelta, varint offsetDelta,
//	        varint keyLength, key, varint valueLength, value, varint headerCount = 0
//	key     id (the owner's name for the log, 1..255 bytes; opaque here) |
//	        int64 big-endian: first offset of the batch in that log
//	value   the batch exactly as appended to that log (its own CRC inside)

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	journalSegmentBytes = 64 << 20
	journalReadBytes    = 1 << 20
	journalMaxID        = 255
)

// ErrCorruptJournal: an entry of the journal does not decode (its CRC matched: a bug or a
// foreign file, never a torn write, which the journal's own recovery cuts).
var ErrCorruptJournal = errors.New("corrupt journal entry")

// Journal is a write-ahead journal shared by many logs; see the top of the file.
type Journal struct {
	log *Log
	mu  sync.Mutex // orders appends, guards buf
	buf []byte
}

// OpenJournal opens (and recovers) the journal in dir. opts.SyncPolicy is the journal's own:
// SyncAlways for a durable journal. Retention is the journal's (Release); segments are
// opts.SegmentBytesMax, 64 MiB if 0.
func OpenJournal(dir string, opts Options) (*Journal, error) {
	if opts.SegmentBytesMax == 0 {
		opts.SegmentBytesMax = journalSegmentBytes
	}
	opts.RetentionMs, opts.RetentionBytes = -1, -1
	opts.Compact = false
	l, err := Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open journal: %w", err)
	}
	return &Journal{log: l}, nil
}

// AppendJournalEntry appends the encoded entry (id, first, batch) to dst (see the top of
// the file); the batch's baseOffset is 0 and the log assigns it.
func AppendJournalEntry(dst []byte, id []byte, first int64, batch []byte, nowMs int64) []byte {
	if len(id) == 0 || len(id) > journalMaxID {
		panic(fmt.Sprintf("BUG: journal id of %d bytes", len(id)))
	}
	key := make([]byte, 0, len(id)+8)
	key = append(key, id...)
	key = binary.BigEndian.AppendUint64(key, uint64(first))
	start := len(dst)
	h := rb.NewHeader(1, nowMs)
	dst = rb.AppendHeader(dst, &h)
	r := rb.Record{Key: key, Value: batch}
	return rb.Finish(r.AppendTo(dst), start)
}

// Append journals batch, appended to the log named id at offset first, and returns the
// journal offset to pass to WaitDurable. Entries of one id must be appended in that log's
// order (callers hold the log's append lock across both appends).
func (j *Journal) Append(id []byte, first int64, batch []byte, nowMs int64) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = AppendJournalEntry(j.buf[:0], id, first, batch, nowMs)
	res, err := j.log.AppendCheckedNoWait(j.buf)
	if err != nil {
		return -1, fmt.Errorf("cannot append to journal: %w", err)
	}
	return res.LastOffset, nil
}

// WaitDurable waits until the journal entry at offset is durable: one fsync shared by every
// entry appended before it, whatever log they went to.
func (j *Journal) WaitDurable(ctx context.Context, offset int64) error {
	return j.log.WaitDurable(ctx, offset)
}

// Durable is the journal offset below which every entry is fsynced.
func (j *Journal) Durable() int64 { return j.log.HighWatermark() }

// Changed returns a channel closed when Durable next moves.
func (j *Journal) Changed() <-chan struct{} { return j.log.Changed() }

// End is the offset the next entry will get: once every log that had entries below End at
// some moment is fsynced, Release(End-as-of-then) may drop them.
func (j *Journal) End() int64 { return j.log.EndOffset() }

// Release drops the journal's segments that hold only entries below offset (and durable).
func (j *Journal) Release(offset int64) error {
	if _, err := j.log.DeleteSegmentsBefore(min(offset, j.log.HighWatermark())); err != nil {
		return fmt.Errorf("cannot release journal: %w", err)
	}
	return nil
}

// Close closes the journal.
func (j *Journal) Close() error { return j.log.Close() }

// Replay calls fn with every entry in the journal, in journal order (each id's own order).
// batch is only valid during the call.
func (j *Journal) Replay(fn func(id []byte, first int64, batch []byte) error) error {
	off, end := j.log.StartOffset(), j.log.EndOffset()
	var buf []byte
	for off < end {
		rr, err := j.log.Read(off, journalReadBytes)
		if err != nil {
			return fmt.Errorf("cannot read journal at %d: %w", off, err)
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			return fmt.Errorf("cannot read journal at %d: %w", off, err)
		}
		next, err := DecodeJournalEntries(buf, fn)
		if err != nil {
			return fmt.Errorf("cannot replay journal at %d: %w", off, err)
		}
		if next <= off {
			return fmt.Errorf("cannot replay journal at %d: no progress", off)
		}
		off = next
	}
	return nil
}

// DecodeJournalEntries decodes the whole entries at the start of b (a partial one at its end
// is left) and returns the journal offset after the last one decoded (-1 if none).
func DecodeJournalEntries(b []byte, fn func(id []byte, first int64, batch []byte) error) (next int64, err error) {
	next = -1
	for used := 0; len(b)-used >= rb.HeaderLen; {
		h, err := rb.ParseHeader(b[used:])
		if err != nil {
			return next, fmt.Errorf("%w: %w", ErrCorruptJournal, err)
		}
		if h.Length > len(b)-used {
			break
		}
		batch := b[used : used+h.Length]
		if err := rb.CheckCRC(batch); err != nil {
			return next, fmt.Errorf("%w: %w", ErrCorruptJournal, err)
		}
		if h.Codec() != rb.CodecNone || h.RecordCount != 1 {
			return next, fmt.Errorf("%w: %d records, codec %d", ErrCorruptJournal, h.RecordCount, h.Codec())
		}
		it := rb.NewRecords(batch[rb.HeaderLen:], h.RecordCount)
		var rec rb.Record
		if !it.Next(&rec) {
			if err := it.Err(); err != nil {
				return next, fmt.Errorf("%w: %w", ErrCorruptJournal, err)
			}
			return next, fmt.Errorf("%w: no record", ErrCorruptJournal)
		}
		if len(rec.Key) < 9 || len(rec.Key) > journalMaxID+8 {
			return next, fmt.Errorf("%w: key of %d bytes", ErrCorruptJournal, len(rec.Key))
		}
		id, first := rec.Key[:len(rec.Key)-8], int64(binary.BigEndian.Uint64(rec.Key[len(rec.Key)-8:]))
		if first < 0 {
			return next, fmt.Errorf("%w: first offset %d", ErrCorruptJournal, first)
		}
		if err := fn(id, first, rec.Value); err != nil {
			return next, err
		}
		next = h.LastOffset() + 1
		used += h.Length
	}
	return next, nil
}
