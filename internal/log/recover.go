package log

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/yardmq/yard/internal/recordbatch"
)

// recover rebuilds the tail state after an unclean shutdown: segments before the
// recovery point are trusted (and not read); the rest is scanned batch by batch.
func (l *Log) recover() error {
	from, pos, next, err := l.recoveryStart()
	if err != nil {
		return err
	}
	rs := l.segs[from]
	start := durablePoint{seg: rs, pos: pos, offset: next, nIdx: len(rs.idx), nTidx: len(rs.tidx),
		segMaxTS: rs.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	next, err = l.scanTail(from, pos, next)
	if err != nil {
		return err
	}
	for _, s := range l.segs[from : len(l.segs)-1] {
		s.tidx = append(s.tidx, s.finalTimeEntry())
		l.pendingIdx = append(l.pendingIdx, s)
	}
	l.end = next
	active := l.segs[len(l.segs)-1]
	l.setCreated(active)
	if l.opts.SyncPolicy != SyncAlways || (from == len(l.segs)-1 && pos == active.size) {
		// Nothing was scanned, or the policy promises nothing: the recovered tail
		// is not fsynced here (that can take long after a process crash left
		// much in the page cache). The syncer fsyncs it like any new data; until
		// then the old recovery point stays, and a second crash rescans it.
		l.durable, l.dp, l.lastCP = start.offset, start, start
		l.unsynced = append(l.unsynced, l.segs[from:len(l.segs)-1]...)
		if next > start.offset {
			active.dirSynced.Store(false)
			l.kickSyncer()
		}
		return nil
	}
	// Under SyncAlways readers only see durable data, and the scanned bytes may
	// so far live only in the page cache (after a process crash): make them
	// durable before opening, and record the new recovery point.
	active.dirSynced.Store(false)
	for _, s := range l.segs[from:] {
		if err := l.syncSegment(s); err != nil {
			return err
		}
	}
	l.durable = l.end
	l.dp = durablePoint{seg: active, pos: active.size, offset: l.end, nIdx: len(active.idx), nTidx: len(active.tidx),
		segMaxTS: active.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	return l.checkpointAtOpen()
}

// scanTail scans segments from segment from at pos (expecting offset next there)
// to the end, rebuilding their indexes and cutting a torn tail; it returns the
// offset after the last valid batch.
func (l *Log) scanTail(from int, pos, next int64) (int64, error) {
	for i := from; i < len(l.segs); i++ {
		s := l.segs[i]
		if i > from {
			if s.base > next {
				// The previous segment was cut at a batch boundary: same as a torn tail.
				if err := l.dropFrom(i, fmt.Sprintf("segment starts at offset %d but the previous one ends at %d", s.base, next)); err != nil {
					return 0, err
				}
				break
			}
			if s.base != next {
				return 0, fmt.Errorf("%w: segment %s starts at offset %d, inside the previous segment (which ends at %d)",
					ErrCorruptBatch, s.path(".log"), s.base, next)
			}
			pos = 0
			s.idx, s.tidx, s.lastIndexedPos, s.maxTS = nil, nil, 0, -1
		}
		f, err := s.acquire()
		if err != nil {
			return 0, err
		}
		ix := indexer{s: s, interval: int64(l.opts.IndexIntervalBytes)}
		r := scanBatches(f, pos, s.size, next, s.cleaned.Load(), func(p int64, b batchInfo) {
			ix.add(p, b, s.maxTS)
			s.maxTS = max(s.maxTS, b.maxTS)
		})
		s.release()
		if r.maxTS > l.maxTS {
			l.maxTS, l.maxTSOf = r.maxTS, r.maxTSOf
		}
		s.end, next = r.next, r.next
		if s.cleaned.Load() && r.err == nil && i+1 < len(l.segs) && l.segs[i+1].base >= r.next {
			// A cleaned segment ends where the next one starts, whatever the cleaner removed.
			s.end, next = l.segs[i+1].base, l.segs[i+1].base
		}
		s.loaded = true
		s.rollMaxTS, s.rollMaxTSOf = l.maxTS, l.maxTSOf
		if r.err != nil {
			if err := l.truncateTornTail(i, r); err != nil {
				return 0, err
			}
		}
	}
	return next, nil
}

// recoveryStart returns where scanning starts: the segment index, position and
// expected next offset, with that segment's trusted index entries loaded.
func (l *Log) recoveryStart() (from int, pos, next int64, err error) {
	first := l.segs[0]
	b, err := readFileAll(l.fsys, l.path(recoveryPointFile))
	if errors.Is(err, fs.ErrNotExist) {
		l.logger.Info("no recovery point; scanning every segment", "segments", len(l.segs))
		return 0, 0, first.base, nil
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot read %s: %w", l.path(recoveryPointFile), err)
	}
	rp, err := decodeRecoveryPoint(b)
	if err != nil {
		l.logger.Warn("ignoring damaged recovery point; scanning every segment", "file", l.path(recoveryPointFile), "err", err)
		return 0, 0, first.base, nil
	}
	if rp.segBase < first.base {
		return 0, 0, first.base, nil // retention deleted the segment since: scan what is left
	}
	for i, s := range l.segs {
		if s.base != rp.segBase {
			continue
		}
		if rp.pos > s.size {
			return 0, 0, 0, fmt.Errorf("%w: %s holds %d bytes but %d were recorded as durable",
				ErrCorruptBatch, s.path(".log"), s.size, rp.pos)
		}
		l.maxTS, l.maxTSOf = rp.maxTS, rp.maxTSOf
		if err := l.loadIndexPrefix(s, rp); err != nil {
			l.logger.Warn("rebuilding index of the recovery segment", "file", s.path(".index"), "err", err)
			s.idx, s.tidx, s.lastIndexedPos, s.maxTS = nil, nil, 0, -1
			s.idxFlushed, s.tidxFlushed = 0, 0
			return i, 0, s.base, nil
		}
		s.maxTS = rp.segMaxTS
		return i, rp.pos, rp.offset, nil
	}
	return 0, 0, 0, fmt.Errorf("%w: recovery point names segment %s, which is missing",
		ErrCorruptBatch, l.path(segmentName(rp.segBase, ".log")))
}

// loadIndexPrefix loads the first rp.nIdx/rp.nTidx entries of s's index files,
// which the recovery point says are durable.
func (l *Log) loadIndexPrefix(s *segment, rp recoveryPoint) error {
	ib, err := readFileAll(l.fsys, s.path(".index"))
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && rp.nIdx == 0) {
		return err
	}
	tb, err := readFileAll(l.fsys, s.path(".timeindex"))
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && rp.nTidx == 0) {
		return err
	}
	if len(ib) < rp.nIdx*offsetEntryLen || len(tb) < rp.nTidx*timeEntryLen {
		return fmt.Errorf("index files shorter than the recovery point's %d/%d entries", rp.nIdx, rp.nTidx)
	}
	idx, err := decodeOffsetIndex(ib[:rp.nIdx*offsetEntryLen], max(rp.pos, 1))
	if err != nil {
		return err
	}
	tidx, err := decodeTimeIndex(tb[:rp.nTidx*timeEntryLen])
	if err != nil {
		return err
	}
	if err := matchIndexes(idx, tidx); err != nil {
		return err
	}
	s.idx, s.tidx = idx, tidx
	s.idxFlushed, s.tidxFlushed = len(idx), len(tidx)
	s.lastIndexedPos = 0
	if len(idx) > 0 {
		s.lastIndexedPos = int64(idx[len(idx)-1].pos)
	}
	return nil
}

// truncateTornTail handles a scan of segment i that stopped at r.end. If a valid
// batch follows in the same segment, this is damage in the middle of the log, not
// a torn write: refuse (a crash leaves a prefix of each file's unsynced writes).
// Otherwise the tail is torn: cut it off and say so. Later segments are removed
// too (and logged): the syncer moves the recovery point past a rolled segment,
// after fsyncing it, before it acknowledges anything in the next one, so a scanned
// segment that is not the last can only be followed by unacknowledged data, which
// the OS may have written back before the segment itself.
func (l *Log) truncateTornTail(i int, r scanResult) error {
	s := l.segs[i]
	f, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	if at, ok := findValidBatch(f, r.end, s.size); ok {
		return fmt.Errorf("%w: %s at position %d (%v), but a valid batch follows at position %d: "+
			"the log is damaged in the middle, not torn at the tail; refusing to truncate",
			ErrCorruptBatch, s.path(".log"), r.end, r.err, at)
	}
	l.logger.Warn("truncating torn tail", "file", s.path(".log"), "position", r.end,
		"bytes_dropped", s.size-r.end, "reason", r.err.Error())
	if err := f.Truncate(r.end); err != nil {
		return fmt.Errorf("cannot truncate %s: %w", s.path(".log"), err)
	}
	l.size -= s.size - r.end
	s.size, s.hwSize = r.end, r.end
	return l.dropFrom(i+1, "after a torn tail")
}

// dropFrom removes segments i and later (unacknowledged, see truncateTornTail).
func (l *Log) dropFrom(i int, why string) error {
	for _, later := range l.segs[i:] {
		l.logger.Warn("removing segment", "file", later.path(".log"), "bytes_dropped", later.size, "reason", why)
		later.decRef()
		if err := removeSegmentFiles(l.fsys, later); err != nil {
			return err
		}
		l.size -= later.size
	}
	l.segs = l.segs[:i]
	return nil
}

// findValidBatch searches byte by byte from pos for a valid batch.
func findValidBatch(f File, pos, size int64) (int64, bool) {
	buf := make([]byte, scanBufBytes)
	var bufPos, bufLen int64
	for q := pos; q+batchHeaderLen <= size; q++ {
		h, err := window(f, &buf, &bufPos, &bufLen, q, batchPrefixReadSize, size)
		if err != nil {
			return 0, false
		}
		if h[recordbatch.OffMagic] != recordbatch.MagicV2 {
			continue
		}
		info, err := parseBatchPrefix(h)
		if err != nil || q+info.size > size {
			continue
		}
		whole, err := window(f, &buf, &bufPos, &bufLen, q, info.size, size)
		if err == nil && checkBatchCRC(whole) == nil {
			return q, true
		}
	}
	return 0, false
}

func timeFromMillis(ms int64) time.Time { return time.UnixMilli(ms) }
