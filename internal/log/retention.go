package log

import (
	"errors"
	"fmt"
	"slices"
)

// EnforceRetention deletes the oldest segments while they are beyond the time
// retention (the segment's largest timestamp, or its file's modification time if
// it holds no timestamps, is older than RetentionMs) or the byte retention (the
// log stays at least RetentionBytes without the segment). It never deletes the
// active segment.
func (l *Log) EnforceRetention() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.cpMu.Lock() // segments go: no recovery point may be being written for one of them
	defer l.cpMu.Unlock()
	deleted := 0
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		if len(l.segs) < 2 {
			l.mu.Unlock()
			break
		}
		s, total, opts := l.segs[0], l.size, l.opts
		l.mu.Unlock()
		if opts.NoDelete {
			break // cleanup.policy=compact: retention deletes nothing
		}
		expired := opts.RetentionBytes >= 0 && total-s.size >= opts.RetentionBytes
		if !expired && opts.RetentionMs >= 0 {
			ts, err := l.segmentTimestamp(s)
			if err != nil {
				return fmt.Errorf("cannot enforce retention: %w", err)
			}
			expired = opts.Now().UnixMilli()-ts > opts.RetentionMs
		}
		if !expired {
			break
		}
		if err := l.deleteOldest(s); err != nil {
			return fmt.Errorf("cannot enforce retention: %w", err)
		}
		deleted++
	}
	if deleted > 0 {
		return l.afterDelete()
	}
	return nil
}

// segmentTimestamp is the time retention judges a rolled segment by.
func (l *Log) segmentTimestamp(s *segment) (int64, error) {
	v, err := l.ensureLoaded(s)
	if err != nil {
		return 0, err
	}
	if v.maxTS >= 0 {
		return v.maxTS, nil
	}
	fi, err := l.fsys.Stat(s.path(".log"))
	if err != nil {
		return 0, fmt.Errorf("cannot stat segment: %w", err)
	}
	return fi.ModTime().UnixMilli(), nil
}

// deleteOldest removes s, the oldest segment, from the log and its files from the
// directory (the .log first, so an interrupted deletion leaves only orphan indexes).
// Readers holding ranges keep the open file until they release it.
func (l *Log) deleteOldest(s *segment) error {
	l.mu.Lock()
	if len(l.segs) < 2 || l.segs[0] != s {
		l.mu.Unlock()
		panic("BUG: deleting a segment that is not the oldest rolled one")
	}
	l.detachOldestLocked()
	l.mu.Unlock()
	return l.removeDetached(s)
}

// removeDetached removes the files of a segment taken out of the log and drops the log's
// reference to it.
func (l *Log) removeDetached(s *segment) error {
	l.logger.Info("deleting segment", "file", s.path(".log"), "bytes", s.size)
	err := removeSegmentFiles(l.fsys, s)
	s.decRef()
	return err
}

// detachOldestLocked takes the oldest segment out of the log (not its files) and returns it.
func (l *Log) detachOldestLocked() *segment {
	s := l.segs[0]
	l.segs = slices.Delete(l.segs, 0, 1)
	l.pendingIdx = slices.DeleteFunc(l.pendingIdx, func(p *segment) bool { return p == s })
	l.unsynced = slices.DeleteFunc(l.unsynced, func(p *segment) bool { return p == s })
	s.removed = true
	l.size -= s.size
	if l.segs[0].base > l.start {
		l.start = l.segs[0].base
	}
	return s
}

// afterDelete makes deletions durable and recomputes the largest timestamp if
// the batch holding it is gone.
func (l *Log) afterDelete() error {
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", l.dir, err)
	}
	return l.recomputeMaxTimestamp()
}

// recomputeMaxTimestamp finds the log's largest timestamp again when the batch
// that held it was deleted or truncated. Called with syncMu held.
func (l *Log) recomputeMaxTimestamp() error {
	l.mu.Lock()
	if l.maxTSOf < 0 || (l.maxTSOf >= l.start && l.maxTSOf < l.end) {
		l.mu.Unlock()
		return nil
	}
	segs := slices.Clone(l.segs)
	active := segs[len(segs)-1]
	best, bestTS := active, active.maxTS
	limit := active.size
	l.mu.Unlock()
	for _, s := range segs[:len(segs)-1] {
		v, err := l.ensureLoaded(s)
		if err != nil {
			return err
		}
		if v.maxTS > bestTS {
			best, bestTS, limit = s, v.maxTS, s.size
		}
	}
	ts, of := int64(-1), int64(-1)
	if bestTS >= 0 {
		f, err := best.acquire()
		if err != nil {
			return err
		}
		r := scanBatches(f, 0, limit, best.base, best.cleaned.Load(), nil)
		best.release()
		ts, of = r.maxTS, r.maxTSOf
	}
	l.mu.Lock()
	l.maxTS, l.maxTSOf = ts, of
	l.mu.Unlock()
	return nil
}

// DeleteRecordsBefore raises the log start offset to offset (durably, before
// anything is deleted) and drops the segments wholly below it.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	gone, err := l.raiseStart(offset)
	if len(gone) == 0 {
		return err
	}
	// The files go after syncMu is released: removing a large segment takes the file system
	// a while, and appenders waiting for an fsync round (acks, confirms) must not wait for it.
	// The start-offset checkpoint is already durable, so a crash before the removals are
	// durable only leaves files that the next open deletes as below the log start.
	for _, s := range gone {
		err = errors.Join(err, l.removeDetached(s))
	}
	if serr := l.fsys.SyncDir(l.dir); serr != nil {
		err = errors.Join(err, fmt.Errorf("cannot sync directory %s: %w", l.dir, serr))
	}
	if err != nil {
		return fmt.Errorf("cannot delete records before %d: %w", offset, err)
	}
	return nil
}

// DeleteSegmentsBefore drops the segments wholly below offset: it raises the log start to
// the base of the segment holding offset, and does nothing when that is not above the start.
// For a caller that wants disk space back rather than a new start for readers: raising the
// start within a segment frees nothing, and every raise writes and fsyncs a checkpoint under
// the sync lock, which the appenders waiting for a group commit then wait behind. It reports
// whether the start moved.
func (l *Log) DeleteSegmentsBefore(offset int64) (bool, error) {
	cut := l.SegmentBase(offset)
	if cut <= l.StartOffset() {
		return false, nil
	}
	return true, l.DeleteRecordsBefore(cut)
}

// raiseStart makes offset the log start (durably) and takes the segments wholly below it out
// of the log, returning them for their files to be removed.
func (l *Log) raiseStart(offset int64) ([]*segment, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	start, hw := l.start, l.hw
	l.mu.Unlock()
	if offset > hw || offset < 0 {
		return nil, fmt.Errorf("cannot delete records before %d: %w (high watermark %d)", offset, ErrOffsetOutOfRange, hw)
	}
	if offset <= start {
		return nil, nil
	}
	if err := writeFileAtomic(l.fsys, l.path(startOffsetFile), encodeStartOffset(offset)); err != nil {
		return nil, fmt.Errorf("cannot delete records before %d: %w", offset, err)
	}
	l.mu.Lock()
	l.start = offset
	var gone []*segment
	for len(l.segs) >= 2 && l.segs[1].base <= offset {
		gone = append(gone, l.detachOldestLocked())
	}
	l.mu.Unlock()
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, l.recomputeMaxTimestamp()
}

// OffsetForTimestamp returns the first offset of the first batch whose
// maxTimestamp >= ts (at least the log start offset), or -1 if there is none
// below the high watermark.
func (l *Log) OffsetForTimestamp(ts int64) (int64, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return -1, ErrClosed
	}
	segs := slices.Clone(l.segs)
	start := l.start
	active := segs[len(segs)-1]
	aIdx, aTidx, aMax, aLimit := active.idx, active.tidx, active.maxTS, active.hwSize
	limits, ends := make([]int64, len(segs)), make([]int64, len(segs))
	for i, s := range segs {
		s.incRef()
		limits[i], ends[i] = s.hwSize, s.end
	}
	l.mu.Unlock()
	defer func() {
		for _, s := range segs {
			s.decRef()
		}
	}()
	for i, s := range segs {
		idx, tidx, segMax, limit := aIdx, aTidx, aMax, aLimit
		if s != active {
			v, err := l.ensureLoaded(s)
			if err != nil {
				return -1, err
			}
			idx, tidx, segMax, limit = v.idx, v.tidx, v.maxTS, limits[i]
		}
		if segMax < ts || (s != active && ends[i] <= start) {
			continue
		}
		off, err := findTimestamp(s, idx, tidx, ts, start, limit)
		if err != nil || off >= 0 {
			return off, err
		}
	}
	return -1, nil
}

func findTimestamp(s *segment, idx []offsetEntry, tidx []timeEntry, ts, start, limit int64) (int64, error) {
	f, err := s.acquire()
	if err != nil {
		return -1, err
	}
	defer s.release()
	rel := timeStartRel(tidx, ts)
	if start > s.base && uint32(start-s.base) > rel {
		rel = uint32(start - s.base)
	}
	w := headerWalker{f: f, buf: make([]byte, readAheadBytes), limit: limit, base: s.base, gaps: s.cleaned.Load()}
	pos, next, _ := w.startAt(idx, floorIndexByRel(idx, rel))
	for pos < limit {
		b, err := w.next(pos, next)
		next = b.lastOffset() + 1
		if err != nil {
			return -1, fmt.Errorf("cannot read %s at %d: %w", s.path(".log"), pos, err)
		}
		if b.maxTS >= ts && b.lastOffset() >= start {
			return max(b.baseOffset, start), nil
		}
		pos += b.size
	}
	return -1, nil
}
