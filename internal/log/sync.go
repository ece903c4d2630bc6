package log

import (
	"context"
	"fmt"
	"os"
	"time"
)

const (
	osCreateTrunc = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	// recoveryCheckpointBytes: checkpointLoop rewrites the recovery point after this many
	// newly durable bytes in the active segment (and the syncer after every roll), bounding
	// how much an unclean open must scan without costing a checkpoint per fsync.
	recoveryCheckpointBytes = 32 << 20
	// lazySyncDelay: after an AppendNoWait under SyncAlways the syncer waits this
	// long before syncing on its own, so that an appender about to call WaitDurable
	// can lead the round itself (saving two goroutine hand-offs per fsync); the
	// syncer only guarantees that the high watermark advances for appends nobody
	// waits for.
	lazySyncDelay = time.Millisecond
)

// kickSyncer asks the syncer for a round now.
func (l *Log) kickSyncer() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// kickSyncerLazily asks the syncer for a round after lazySyncDelay unless a
// waiter runs one first.
func (l *Log) kickSyncerLazily() {
	select {
	case l.lazyKick <- struct{}{}:
	default:
	}
}

// syncLoop is the log's syncer goroutine. Rounds also run in WaitDurable callers
// (leader/follower group commit); syncMu makes them one at a time.
func (l *Log) syncLoop() {
	defer l.wg.Done()
	l.mu.Lock()
	interval := l.opts.SyncInterval
	l.mu.Unlock()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lazy := time.NewTimer(time.Hour)
	lazy.Stop()
	for {
		force := false
		select {
		case <-l.stop:
			return
		case <-l.kick:
		case <-l.lazyKick:
			lazy.Reset(lazySyncDelay)
			select {
			case <-l.stop:
				return
			case <-l.kick:
				lazy.Stop()
			case <-lazy.C:
			}
		case <-tick.C:
			force = true
		}
		l.mu.Lock()
		policy, newInterval := l.opts.SyncPolicy, l.opts.SyncInterval
		l.mu.Unlock()
		if newInterval != interval {
			interval = newInterval
			tick.Reset(interval)
		}
		if force && policy != SyncInterval {
			continue
		}
		_ = l.syncRound(policy != SyncNever)
	}
}

// syncRound is one group commit. It fsyncs the rolled segments not yet synced,
// then (if they were any) writes the recovery point at the start of the active
// segment, then (if data is set) fsyncs the active segment up to what is written
// now, advances the durable point and wakes the waiters, and finally asks
// checkpointLoop to rewrite the recovery point when it lags far enough. Because the
// recovery point passes a rolled segment before anything after it is acknowledged,
// recovery never has to scan a non-last segment whose successors hold acknowledged
// data. It returns the sticky failure, if any.
func (l *Log) syncRound(data bool) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncRoundLocked(data)
}

// syncRoundLocked is syncRound with syncMu held.
func (l *Log) syncRoundLocked(data bool) error {
	l.mu.Lock()
	if l.failed != nil || l.closed {
		err := l.writableLocked()
		l.wakeSyncWaitersLocked()
		l.mu.Unlock()
		return err
	}
	rolled := l.unsynced
	l.unsynced = nil
	s := l.segs[len(l.segs)-1]
	snap := durablePoint{seg: s, pos: s.size, offset: l.end, nIdx: len(s.idx), nTidx: len(s.tidx),
		segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	data = data && snap.offset > l.durable
	l.roundTo = snap.offset
	s.incRef()
	l.mu.Unlock()
	defer s.decRef()

	err := l.syncRolled(rolled)
	var took time.Duration
	if err == nil && data {
		start := time.Now()
		err = l.syncSegment(s)
		took = time.Since(start)
	}
	l.mu.Lock()
	records := max(snap.offset-l.durable, 0) // an overlapSync may have covered some
	if err != nil {
		l.failed = err
		l.logger.Error("fsync failed; the log refuses appends until reopened", "dir", l.dir, "err", err)
	} else if data {
		s.hwSize = max(s.hwSize, snap.pos)
		l.advanceDurableLocked(snap)
	}
	l.wakeSyncWaitersLocked()
	dp, last := l.dp, l.lastCP
	obs := l.opts.SyncObserver
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if data && obs != nil {
		obs.ObserveSync(took, records)
	}
	if checkpointDue(dp, last) {
		select {
		case l.cpKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// checkpointDue reports whether the recovery point written last lags the durable point far
// enough to write it again.
func checkpointDue(dp, last durablePoint) bool {
	return dp.seg != nil && (dp.seg != last.seg || dp.pos-last.pos >= recoveryCheckpointBytes)
}

// checkpointLoop writes the periodic recovery point when a sync round asks for it. It used to
// be the round's last step, under syncMu: the index flushes, the checkpoint file and the
// directory fsync it takes (several fsyncs, every 32 MiB of a partition) then delayed the
// next round and every acknowledgement waiting for it. It runs beside the rounds now: the
// recovery point only bounds how much an unclean open scans, and a late one is as valid as
// an early one (everything below it is durable).
func (l *Log) checkpointLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-l.cpKick:
		}
		l.cpMu.Lock()
		l.mu.Lock()
		due := !l.closed && !l.closing && l.failed == nil && checkpointDue(l.dp, l.lastCP)
		l.mu.Unlock()
		if due {
			if err := l.writeRecoveryPoint(); err != nil && !IsNoSpace(err) {
				// Durability does not depend on it: the previous recovery point stays valid and
				// the next round asks again. A full disk is retried the same way, silently.
				l.rate.Warn("recovery point", "cannot write the recovery point; retrying after the next fsync", "dir", l.dir, "err", err)
			}
		}
		l.cpMu.Unlock()
	}
}

// syncRolled fsyncs rolled segments (oldest first) and moves the durable point
// and the recovery point to the start of active, the segment after them.
func (l *Log) syncRolled(rolled []*segment) error {
	if len(rolled) == 0 {
		return nil
	}
	for _, r := range rolled {
		if err := l.syncSegment(r); err != nil {
			return err
		}
	}
	l.mu.Lock()
	last := rolled[len(rolled)-1]
	for _, r := range rolled {
		r.hwSize = r.size
	}
	l.advanceDurableLocked(durablePoint{seg: segmentAt(l.segs, last.end), offset: last.end,
		segMaxTS: -1, maxTS: last.rollMaxTS, maxTSOf: last.rollMaxTSOf})
	l.mu.Unlock()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if err := l.writeRecoveryPoint(); err != nil && !IsNoSpace(err) {
		return err
	}
	// On a full disk the data is durable all the same: the old recovery point stays valid
	// (an open after a crash scans more) and the next round writes a new one. A failed
	// checkpoint must not fail the log as a failed fsync does.
	return nil
}

func segmentAt(segs []*segment, base int64) *segment {
	for _, s := range segs {
		if s.base == base {
			return s
		}
	}
	panic("BUG: no segment starts at the end of a rolled segment")
}

// syncSegment fsyncs s's data (and, once, the directory holding its name).
func (l *Log) syncSegment(s *segment) error {
	if !s.dirSynced.Load() {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return fmt.Errorf("cannot sync directory %s: %w", l.dir, err)
		}
		s.dirSynced.Store(true)
	}
	f, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot sync %s: %w", s.path(".log"), err)
	}
	return nil
}

func (l *Log) wakeSyncWaitersLocked() {
	close(l.syncDone)
	l.syncDone = make(chan struct{})
}

// WaitDurable returns once offset is durable per the policy: under SyncAlways after
// an fsync covers it (shared with every other waiter), immediately otherwise.
func (l *Log) WaitDurable(ctx context.Context, offset int64) error {
	for {
		l.mu.Lock()
		if l.durable > offset || (l.opts.SyncPolicy != SyncAlways && l.failed == nil) {
			l.mu.Unlock()
			return nil
		}
		if err := l.writableLocked(); err != nil {
			l.mu.Unlock()
			return err
		}
		if offset >= l.end {
			l.mu.Unlock()
			return fmt.Errorf("cannot wait for offset %d: %w (log end %d)", offset, ErrOffsetOutOfRange, l.end)
		}
		ch := l.syncDone
		l.mu.Unlock()
		// Lead a round if none is running; otherwise the running one may have
		// started before our write, so wait for it and try again, unless it started
		// after our write: then fsync beside it. The kick keeps this live if syncMu is
		// held by something else (retention, truncation).
		if l.syncMu.TryLock() {
			_ = l.syncRoundLocked(true)
			l.syncMu.Unlock()
			continue
		}
		if l.overlapSync(offset) {
			continue
		}
		l.kickSyncer()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// overlapSync fsyncs the active segment beside a running sync round when that round's
// snapshot does not cover offset, so that appends made while a round runs (the next requests
// of a pipelining producer, other producers' batches) need not wait for it to end before
// their own fsync starts: the rounds of one log overlap by at most one fsync. The fsync
// covers everything written before it starts, the round's bytes included, so the durable
// point only moves forward (advanceDurableLocked ignores an older point). It runs under
// cpMu, which truncation, reset, retention and close take after syncMu, so the active
// segment cannot change under it; it gives up (false: wait for the round instead) when cpMu
// is busy (a checkpoint), when rolled segments await their fsync (the round's work, with the
// recovery point), or when the log is failed or closing. A roll during its fsync leaves the
// durable point to the round. It reports whether it ran.
func (l *Log) overlapSync(offset int64) bool {
	l.mu.Lock()
	ok := l.roundTo <= offset && l.unsynced == nil && l.failed == nil && !l.closed && !l.closing
	l.mu.Unlock()
	if !ok || !l.cpMu.TryLock() {
		return false
	}
	defer l.cpMu.Unlock()
	l.mu.Lock()
	if l.durable > offset || l.unsynced != nil || l.failed != nil || l.closed || l.closing {
		l.mu.Unlock()
		return true // the caller looks again
	}
	s := l.segs[len(l.segs)-1]
	snap := durablePoint{seg: s, pos: s.size, offset: l.end, nIdx: len(s.idx), nTidx: len(s.tidx),
		segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	s.incRef()
	l.mu.Unlock()
	defer s.decRef()

	start := time.Now()
	err := l.syncSegment(s)
	took := time.Since(start)
	l.mu.Lock()
	records := max(snap.offset-l.durable, 0)
	if err != nil {
		l.failed = err
		l.logger.Error("fsync failed; the log refuses appends until reopened", "dir", l.dir, "err", err)
	} else if l.segs[len(l.segs)-1] == s {
		s.hwSize = max(s.hwSize, snap.pos)
		l.advanceDurableLocked(snap)
	}
	l.wakeSyncWaitersLocked()
	dp, last := l.dp, l.lastCP
	obs := l.opts.SyncObserver
	l.mu.Unlock()
	if err == nil && obs != nil {
		obs.ObserveSync(took, records)
	}
	if checkpointDue(dp, last) {
		select {
		case l.cpKick <- struct{}{}:
		default:
		}
	}
	return true
}

// Sync fsyncs everything appended so far, whatever the policy.
func (l *Log) Sync() error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.syncRound(true)
}

// checkpointAtOpen writes the recovery point at open. On a full disk the log opens all the
// same (read-only in effect until space returns): the previous recovery point, if any, stays
// valid and the next open only scans more.
func (l *Log) checkpointAtOpen() error {
	l.cpMu.Lock()
	err := l.writeRecoveryPoint()
	l.cpMu.Unlock()
	if err != nil && IsNoSpace(err) {
		l.logger.Warn("cannot write the recovery point: file system full; opening anyway", "err", err)
		return nil
	}
	return err
}

// writeRecoveryPoint flushes and fsyncs the indexes below the durable point, then
// writes it as the recovery-point checkpoint. Called with cpMu held.
func (l *Log) writeRecoveryPoint() error {
	l.mu.Lock()
	dp := l.dp
	if dp.seg.removed {
		// Retention removed the segment since: the next durable point will do.
		l.mu.Unlock()
		return nil
	}
	rolled := l.pendingIdx
	l.pendingIdx = nil
	idx, tidx := dp.seg.idx[:dp.nIdx], dp.seg.tidx[:dp.nTidx]
	l.mu.Unlock()
	for i, r := range rolled {
		if err := r.flushIndexes(r.idx, r.tidx, true); err != nil {
			l.mu.Lock()
			l.pendingIdx = append(rolled[i:], l.pendingIdx...)
			l.mu.Unlock()
			return err
		}
	}
	if err := dp.seg.flushIndexes(idx, tidx, true); err != nil {
		return err
	}
	if err := writeFileAtomic(l.fsys, l.path(recoveryPointFile), encodeRecoveryPoint(dp)); err != nil {
		return fmt.Errorf("cannot write recovery point: %w", err)
	}
	l.mu.Lock()
	l.lastCP = dp
	l.mu.Unlock()
	return nil
}
