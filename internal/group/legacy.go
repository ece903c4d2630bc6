package group

// Migration of the offsets log of earlier yard versions: one internal/log.Log in
// <data-dir>/__consumer_offsets/ (internal/datadir), batches in the RecordBatch v2 layout,
// uncompressed, producer id -1, each record:
//
//	key   int16 version=1 | int16-string group | int16-string topic | int32 partition
//	value int16 version=1 | int64 offset | int32 leaderEpoch | int16-string metadata |
//	      int64 commitTimestampMs            (absent = tombstone)
//
// The key is Kafka's OffsetCommitKey v1; the value is laid out as Kafka's OffsetCommitValue
// v3 but labelled 1, which is why it has its own decoder here. The log's last record of a
// key wins (earlier versions also appended snapshots of the live state and dropped what
// preceded them).
//
// migrateLegacy, at start-up: replay the old log into a map; write that state into the
// partitions of __consumer_offsets in Kafka's schemas; fsync them; only then rename the old
// directory to a tombstone (fsynced) and remove it. A crash before the rename leaves the old
// log, and the next start migrates again: the state is appended once more after whatever a
// partial run wrote, and since the last record of a key wins, the result is the same (the
// cleaner drops the duplicates). Nothing served in between: migration runs before the
// coordinator opens.

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

const legacyVersion = 1

// decodeLegacyRecord parses one record of the old log (nil value = tombstone).
func decodeLegacyRecord(key, value []byte) (coordRecord, error) {
	r := coordRecord{Kind: kindOffset}
	if len(key) < 2 || binary.BigEndian.Uint16(key) != legacyVersion {
		return r, fmt.Errorf("%w: legacy key version", errCorruptRecord)
	}
	d := decoder{b: key[2:]}
	r.Group, r.Topic, r.Partition = d.str(), d.str(), d.i32()
	if err := d.end("legacy key"); err != nil {
		return r, err
	}
	if value == nil {
		return r, nil
	}
	if len(value) < 2 || binary.BigEndian.Uint16(value) != legacyVersion {
		return r, fmt.Errorf("%w: legacy value version", errCorruptRecord)
	}
	d = decoder{b: value[2:]}
	v := OffsetValue{Offset: d.i64(), LeaderEpoch: d.i32(), Metadata: d.str(), CommitMs: d.i64()}
	if err := d.end("legacy value"); err != nil {
		return r, err
	}
	r.Offset = &v
	return r, nil
}

// appendLegacyBatch encodes offsets in the old format (tests write old data directories with
// it).
func appendLegacyBatch(dst []byte, recs []coordRecord, nowMs int64) []byte {
	start := len(dst)
	h := rb.NewHeader(int32(len(recs)), nowMs)
	dst = rb.AppendHeader(dst, &h)
	for i, r := range recs {
		key := binary.BigEndian.AppendUint16(nil, legacyVersion)
		key = appendString16(key, r.Group)
		key = appendString16(key, r.Topic)
		key = binary.BigEndian.AppendUint32(key, uint32(r.Partition))
		rec := rb.Record{OffsetDelta: int32(i), Key: key}
		if r.Offset != nil {
			v := binary.BigEndian.AppendUint16(nil, legacyVersion)
			v = binary.BigEndian.AppendUint64(v, uint64(r.Offset.Offset))
			v = binary.BigEndian.AppendUint32(v, uint32(r.Offset.LeaderEpoch))
			v = appendString16(v, r.Offset.Metadata)
			v = binary.BigEndian.AppendUint64(v, uint64(r.Offset.CommitMs))
			rec.Value = v
		}
		dst = rec.AppendTo(dst)
	}
	return rb.Finish(dst, start)
}

// readLegacy replays the old log at dir into a map of group -> offsets.
func readLegacy(dir string, opts log.Options) (map[string]map[TopicPartition]OffsetValue, error) {
	opts.RetentionMs, opts.RetentionBytes = -1, -1
	l, err := log.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open the old offsets log: %w", err)
	}
	defer l.Close()
	state := map[string]map[TopicPartition]OffsetValue{}
	sh := &offsetShard{groups: state, meta: map[string]*GroupMetadata{}}
	off, end := l.StartOffset(), l.EndOffset()
	var buf []byte
	for off < end {
		rr, err := l.Read(off, replayReadBytes)
		if err != nil {
			return nil, fmt.Errorf("cannot read the old offsets log at %d: %w", off, err)
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			return nil, fmt.Errorf("cannot read the old offsets log at %d: %w", off, err)
		}
		used, next, err := walkBatches(buf, func(h *rb.Header, batch []byte) error {
			if h.Codec() != rb.CodecNone {
				return fmt.Errorf("%w: compressed batch", errCorruptRecord)
			}
			it := rb.NewRecords(batch[rb.HeaderLen:], h.RecordCount)
			var rec rb.Record
			for it.Next(&rec) {
				r, err := decodeLegacyRecord(rec.Key, rec.Value)
				if err != nil {
					return err
				}
				sh.applyLocked(r)
			}
			return it.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("cannot replay the old offsets log at %d: %w", off, err)
		}
		if used == 0 || next <= off {
			return nil, fmt.Errorf("cannot replay the old offsets log at %d: no progress", off)
		}
		off = next
	}
	return state, nil
}

// migrateLegacy converts the old offsets log at dir, if there is one, into s's partitions
// (see the top of this file). s must not be serving yet.
func (s *offsetStore) migrateLegacy(dir string, opts log.Options) error {
	if dir == "" {
		return nil
	}
	tomb := dir + datadir.DeletedSuffix
	if _, err := os.Lstat(tomb); err == nil { // a migration that finished but for the removal
		if err := datadir.RemoveTombstone(tomb); err != nil {
			return err
		}
	}
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return nil
	}
	state, err := readLegacy(dir, opts)
	if err != nil {
		return err
	}
	nowMs := s.now().UnixMilli()
	touched := map[*offsetShard]bool{}
	offsets := 0
	for _, group := range sortedKeys(state) {
		sh := s.shard(group)
		recs := offsetRecords(group, state[group])
		offsets += len(recs)
		for len(recs) > 0 {
			n := min(len(recs), chunkRecords)
			sh.mu.Lock()
			_, err := sh.appendLocked(recs[:n], nowMs, noProducer)
			sh.mu.Unlock()
			if err != nil {
				return fmt.Errorf("cannot migrate the offsets of group %s: %w", group, err)
			}
			touched[sh] = true
			recs = recs[n:]
		}
	}
	if s.journal != nil {
		if err := s.flush(); err != nil { // writes the queued batches and fsyncs
			return fmt.Errorf("cannot write migrated offsets: %w", err)
		}
	} else {
		for sh := range touched {
			if err := sh.p.Sync(); err != nil {
				return fmt.Errorf("cannot sync migrated offsets: %w", err)
			}
		}
	}
	tomb, err = datadir.Tombstone(dir, "")
	if err != nil {
		return fmt.Errorf("cannot retire the old offsets log: %w", err)
	}
	if err := datadir.RemoveTombstone(tomb); err != nil {
		return fmt.Errorf("cannot remove the old offsets log: %w", err)
	}
	s.logger.Info("committed offsets migrated from the old one-partition log to __consumer_offsets",
		"groups", len(state), "offsets", offsets, "old_dir", dir)
	return nil
}
