package log

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
)

// TruncateTo drops every batch at or after offset: the batch containing offset
// goes too, so EndOffset afterwards is that batch's base offset. The truncation is
// durable when TruncateTo returns; a crash during it leaves the log cut somewhere
// between the old end and the new one. Appends wait while it runs.
func (l *Log) TruncateTo(offset int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.cpMu.Lock() // a checkpoint taken before the cut must not be written after it
	defer l.cpMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if offset >= l.end {
		return nil
	}
	if offset < l.start {
		return fmt.Errorf("cannot truncate to %d: %w (log start %d)", offset, ErrOffsetOutOfRange, l.start)
	}
	i := l.segmentForLocked(offset)
	s := l.segs[i]
	if i < len(l.segs)-1 {
		if _, err := l.ensureLoaded(s); err != nil {
			return err
		}
	}
	pos, newEnd, err := batchStartFor(s, offset)
	if err != nil {
		return err
	}
	if err := l.dropSegmentsAfter(i); err != nil {
		return err
	}
	if err := l.cutSegment(s, pos, newEnd); err != nil {
		l.failed = err
		return err
	}
	l.end = newEnd
	l.durable = newEnd
	l.visible = nil // every append it listed was at or past the new end, or is below it now
	if l.start > newEnd {
		// The start was inside the batch that went: the log is now empty at its end.
		if err := writeFileAtomic(l.fsys, l.path(startOffsetFile), encodeStartOffset(newEnd)); err != nil {
			l.failed = err
			return err
		}
		l.start = newEnd
	}
	l.hw = -1 // force a wake-up even if the value is unchanged
	l.setHWLocked(newEnd)
	l.dp = durablePoint{seg: s, pos: pos, offset: newEnd, nIdx: len(s.idx), nTidx: len(s.tidx),
		segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	l.mu.Unlock()
	defer l.mu.Lock()
	if err := l.writeRecoveryPoint(); err != nil {
		return err
	}
	return l.recomputeMaxTimestamp()
}

// dropSegmentsAfter removes the segments after i for a truncation: newest first,
// so that a crash leaves a consistent prefix of the log (the recovery point moves
// back afterwards). Rolled segments that stay and still wait for the syncer are
// fsynced, as the truncation declares everything before its point durable.
// Called with syncMu and mu held.
func (l *Log) dropSegmentsAfter(i int) error {
	s := l.segs[i]
	for j := len(l.segs) - 1; j > i; j-- {
		later := l.segs[j]
		later.removed = true
		if err := removeSegmentFiles(l.fsys, later); err != nil {
			return err
		}
		l.size -= later.size
		later.decRef()
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return fmt.Errorf("cannot sync directory %s: %w", l.dir, err)
	}
	l.segs = l.segs[:i+1]
	l.pendingIdx = slices.DeleteFunc(l.pendingIdx, func(p *segment) bool { return p.base >= s.base })
	for _, r := range l.unsynced {
		if r.base < s.base {
			if err := l.syncSegment(r); err != nil {
				l.failed = err
				return err
			}
		}
	}
	l.unsynced = nil
	return nil
}

// batchStartFor returns the position and base offset of the batch containing offset.
func batchStartFor(s *segment, offset int64) (int64, int64, error) {
	f, err := s.acquire()
	if err != nil {
		return 0, 0, err
	}
	defer s.release()
	w := headerWalker{f: f, buf: make([]byte, readAheadBytes), limit: s.size, base: s.base, gaps: s.cleaned.Load()}
	pos, next, _ := w.startAt(s.idx, floorIndexByRel(s.idx, uint32(offset-s.base)))
	for pos < s.size {
		b, err := w.next(pos, next)
		next = b.lastOffset() + 1
		if err != nil {
			return 0, 0, fmt.Errorf("cannot read %s at %d: %w", s.path(".log"), pos, err)
		}
		if b.lastOffset() >= offset {
			return pos, b.baseOffset, nil
		}
		pos += b.size
	}
	return s.size, s.end, nil
}

// cutSegment truncates s at pos (a batch boundary), makes it the active segment
// and rewrites its indexes.
func (l *Log) cutSegment(s *segment, pos, newEnd int64) error {
	f, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	if err := f.Truncate(pos); err != nil {
		return fmt.Errorf("cannot truncate %s: %w", s.path(".log"), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", s.path(".log"), err)
	}
	s.loadMu.Lock() // readers of a rolled segment snapshot its indexes under loadMu
	defer s.loadMu.Unlock()
	n := 0
	for n < len(s.idx) && int64(s.idx[n].pos) < pos {
		n++
	}
	// Fresh slices: readers may hold the old ones, which later appends must not overwrite.
	s.idx = slices.Clone(s.idx[:n])
	s.tidx = slices.Clone(s.tidx[:n])
	s.lastIndexedPos, s.maxTS = 0, -1
	scanFrom, scanNext := int64(0), s.base
	if n > 0 {
		s.lastIndexedPos = int64(s.idx[n-1].pos)
		scanFrom, scanNext = s.lastIndexedPos, s.base+int64(s.idx[n-1].rel)
		s.maxTS = s.tidx[n-1].ts // the largest timestamp before that batch
	}
	r := scanBatches(f, scanFrom, pos, scanNext, s.cleaned.Load(), nil)
	if r.err != nil {
		return fmt.Errorf("cannot truncate %s: %w", s.path(".log"), r.err)
	}
	s.maxTS = max(s.maxTS, r.maxTS)
	if s.created.IsZero() {
		s.created = l.opts.Now()
	}
	l.size -= s.size - pos
	s.size, s.hwSize, s.end = pos, pos, newEnd
	return s.rewriteIndexes(s.idx, s.tidx)
}

// Close fsyncs everything, writes the indexes, the recovery point and the
// clean-shutdown marker, and closes the files (those still used by unreleased
// ReadResults close on Release). Appends fail with ErrClosed from the moment Close
// starts. After a failed fsync no marker is written, so the next Open recovers.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed || l.closing {
		l.mu.Unlock()
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	// A cleaning stops at l.stop (its output removed); wait for it to be gone.
	l.cleanMu.Lock()
	l.cleanMu.Unlock() //nolint:staticcheck // waiting, not guarding
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	err := l.failed
	l.mu.Unlock()
	if err == nil {
		err = l.closeClean()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.wakeSyncWaitersLocked()
	for _, s := range l.segs {
		s.decRef()
	}
	if err != nil {
		return fmt.Errorf("cannot close log %s: %w", l.dir, err)
	}
	return nil
}

// closeClean makes everything durable and writes the marker. syncMu is held and
// no append can run (closing is set).
func (l *Log) closeClean() error {
	l.mu.Lock()
	s := l.segs[len(l.segs)-1]
	l.mu.Unlock()
	if err := l.syncSegment(s); err != nil {
		l.mu.Lock()
		l.failed = err
		l.mu.Unlock()
		return err
	}
	l.mu.Lock()
	s.hwSize = s.size
	l.advanceDurableLocked(durablePoint{seg: s, pos: s.size, offset: l.end, nIdx: len(s.idx), nTidx: len(s.tidx),
		segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf})
	l.setHWLocked(l.end)
	c := cleanShutdown{segBase: s.base, segSize: s.size, end: l.end, segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	l.mu.Unlock()
	err := l.writeRecoveryPoint()
	if err == nil {
		err = writeFileAtomic(l.fsys, l.path(cleanShutdownFile), encodeCleanShutdown(c))
	}
	if err != nil && IsNoSpace(err) {
		// The data is durable (fsynced above); without the marker the next open recovers
		// from the last recovery point, as after a crash.
		l.logger.Warn("cannot mark a clean shutdown: file system full; the next open recovers", "err", err)
		return nil
	}
	return err
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
		l.logger.Warn("closing log before deletion", "err", err)
	}
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot delete log %s: %w", l.dir, err)
	}
	for _, n := range names {
		if err := l.fsys.Remove(l.path(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot delete log %s: %w", l.dir, err)
		}
	}
	if err := l.fsys.Remove(l.dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot delete log %s: %w", l.dir, err)
	}
	return nil
}
