package log

import (
	"fmt"
)

// ResetTo drops every segment and restarts the log empty at offset: afterwards its start and
// end offsets are both offset, whether that lies before, inside or beyond what it held. A
// replica does this when the log it copies no longer holds its end (retention moved that
// log's start past it), as a Kafka follower whose fetch offset is out of range does. The new
// start is written durably first, so a crash during the reset leaves either the old log cut
// at or after offset (open drops segments below the start) or the empty log at offset.
// Appends wait while it runs; readers keep the files they hold until they release them.
func (l *Log) ResetTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("cannot reset log to %d: %w", offset, ErrOffsetOutOfRange)
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return err
	}
	if err := writeFileAtomic(l.fsys, l.path(startOffsetFile), encodeStartOffset(offset)); err != nil {
		return fmt.Errorf("cannot reset log to %d: %w", offset, err)
	}
	for j := len(l.segs) - 1; j >= 0; j-- { // newest first: a crash leaves a prefix
		s := l.segs[j]
		s.removed = true
		if err := removeSegmentFiles(l.fsys, s); err != nil {
			l.failed = err
			return err
		}
		l.segs = l.segs[:j]
		l.size -= s.size
		s.decRef()
	}
	l.pendingIdx, l.unsynced = nil, nil
	s, err := l.createSegment(offset)
	if err != nil {
		l.failed = err
		return err
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		l.failed = fmt.Errorf("cannot sync directory %s: %w", l.dir, err)
		return l.failed
	}
	l.segs, l.size = []*segment{s}, 0
	l.start, l.end, l.durable, l.maxTS, l.maxTSOf = offset, offset, offset, -1, -1
	l.hw = -1 // force a wake-up even if the value is unchanged
	l.setHWLocked(offset)
	l.dp = durablePoint{seg: s, offset: offset, segMaxTS: -1, maxTS: -1, maxTSOf: -1}
	l.mu.Unlock()
	defer l.mu.Lock()
	return l.writeRecoveryPoint()
}
