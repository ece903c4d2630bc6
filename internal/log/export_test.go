package log

// closeUnclean simulates a process crash for tests and benchmarks: it stops the
// syncer and closes the files without fsync, checkpoint or clean-shutdown marker.
func (l *Log) closeUnclean() {
	l.mu.Lock()
	if l.closed || l.closing {
		l.mu.Unlock()
		return
	}
	l.closing = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.wakeSyncWaitersLocked()
	for _, s := range l.segs {
		s.decRef()
	}
}
