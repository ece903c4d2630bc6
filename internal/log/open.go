package log

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/yardmq/yard/internal/ratelog"
)

// Open opens (creating if needed) the log in dir and recovers it: after a clean
// Close no segment data is read; otherwise only the bytes after the recovery point
// are scanned (see the package comment).
func Open(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	l := &Log{
		dir: dir, fsys: opts.FS, files: opts.FileCache, logger: opts.Logger.With("log", dir), opts: opts,
		maxTS: -1, maxTSOf: -1,
		changed: make(chan struct{}), syncDone: make(chan struct{}),
		kick: make(chan struct{}, 1), lazyKick: make(chan struct{}, 1), cpKick: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	l.rate = ratelog.New(l.logger, 0)
	l.bufPool.New = func() any { b := make([]byte, readAheadBytes); return &b }
	if err := l.fsys.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("cannot create log directory %s: %w", dir, err)
	}
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.decRef()
		}
		return nil, fmt.Errorf("cannot open log %s: %w", dir, err)
	}
	// Under SyncAlways readers see only durable data; recover may leave a tail
	// for the syncer to fsync (only under the other policies, where hw is the end).
	l.hw = l.end
	if l.opts.SyncPolicy == SyncAlways {
		l.hw = l.durable
	}
	l.wg.Add(2)
	go l.syncLoop()
	go l.checkpointLoop()
	return l, nil
}

// load lists the directory, builds the segment list and recovers the tail.
func (l *Log) load() error {
	bases, err := l.listDir()
	if err != nil {
		return err
	}
	if err := l.readStartOffset(); err != nil {
		return err
	}
	bases, err = l.dropBelowStart(bases)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		s, err := l.createSegment(l.start)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		l.end, l.durable = l.start, l.start
		l.dp = durablePoint{seg: s, offset: l.start, segMaxTS: -1, maxTS: -1, maxTSOf: -1}
		return l.checkpointAtOpen()
	}
	for i, b := range bases {
		s := l.newSegment(b)
		s.dirSynced.Store(true)
		fi, err := l.fsys.Stat(s.path(".log"))
		if err != nil {
			return fmt.Errorf("cannot stat segment: %w", err)
		}
		s.size, s.hwSize = fi.Size(), fi.Size()
		if i+1 < len(bases) {
			s.end = bases[i+1]
		}
		l.size += s.size
		l.segs = append(l.segs, s)
	}
	if l.start < bases[0] {
		l.start = bases[0]
	}
	if err := l.readCleanerCheckpoint(); err != nil {
		return err
	}
	ok, err := l.openClean()
	if err == nil && !ok {
		err = l.recover()
	}
	if err != nil || l.start <= l.end {
		return err
	}
	return l.restartAtStart()
}

// restartAtStart handles a log start offset beyond the recovered end (records
// deleted under SyncNever, then lost in a crash): like Kafka, the log restarts
// empty at its start offset.
func (l *Log) restartAtStart() error {
	l.logger.Warn("log start offset is beyond the recovered end; restarting the log empty at the start offset",
		"start", l.start, "end", l.end)
	for _, s := range l.segs {
		s.decRef()
		if err := removeSegmentFiles(l.fsys, s); err != nil {
			return err
		}
	}
	s, err := l.createSegment(l.start)
	if err != nil {
		return err
	}
	l.segs, l.pendingIdx, l.unsynced, l.size = []*segment{s}, nil, nil, 0
	l.end, l.durable, l.maxTS, l.maxTSOf = l.start, l.start, -1, -1
	l.dp = durablePoint{seg: s, offset: l.start, segMaxTS: -1, maxTS: -1, maxTSOf: -1}
	return l.checkpointAtOpen()
}

// listDir classifies the directory's entries: segment files, our checkpoint files
// and leftovers of interrupted atomic writes (removed). Anything else is foreign
// data and an error: yard never mixes its log with other files.
func (l *Log) listDir() ([]int64, error) {
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list directory: %w", err)
	}
	logs := map[int64]bool{}
	var indexes, cleaning []string
	for _, name := range names {
		switch {
		case name == startOffsetFile || name == recoveryPointFile || name == cleanShutdownFile ||
			name == cleanerCheckpointFile:
			continue
		case strings.HasSuffix(name, ".tmp") && isOurs(strings.TrimSuffix(name, ".tmp")):
			if err := l.fsys.Remove(l.path(name)); err != nil {
				return nil, fmt.Errorf("cannot remove leftover %s: %w", name, err)
			}
			continue
		}
		if strings.HasSuffix(name, deletedExt) && isOurs(strings.TrimSuffix(name, deletedExt)) {
			// A segment a cleaning replaced, renamed aside for removal (clean.go).
			if err := l.fsys.Remove(l.path(name)); err != nil {
				return nil, fmt.Errorf("cannot remove replaced segment %s: %w", name, err)
			}
			continue
		}
		if _, _, _, ok := parseCleanFileName(name); ok {
			cleaning = append(cleaning, name)
			continue
		}
		base, ext, ok := parseSegmentName(name)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a yard log file", ErrForeignFile, l.path(name))
		}
		if ext == ".log" {
			logs[base] = true
		} else {
			indexes = append(indexes, name)
		}
	}
	if err := l.recoverCleaning(cleaning, logs); err != nil {
		return nil, err
	}
	for _, name := range indexes {
		// An index without its segment is left by an interrupted segment deletion
		// (which removes the .log first).
		if base, _, _ := parseSegmentName(name); !logs[base] {
			l.logger.Info("removing orphan index", "file", l.path(name))
			if err := l.fsys.Remove(l.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("cannot remove orphan index %s: %w", name, err)
			}
		}
	}
	bases := make([]int64, 0, len(logs))
	for b := range logs {
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func isOurs(name string) bool {
	if name == startOffsetFile || name == recoveryPointFile || name == cleanShutdownFile || name == cleanerCheckpointFile {
		return true
	}
	_, _, ok := parseSegmentName(name)
	return ok
}

func (l *Log) readStartOffset() error {
	b, err := readFileAll(l.fsys, l.path(startOffsetFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", l.path(startOffsetFile), err)
	}
	if l.start, err = decodeStartOffset(b); err != nil {
		return fmt.Errorf("cannot decode %s: %w", l.path(startOffsetFile), err)
	}
	return nil
}

// dropBelowStart finishes an interrupted DeleteRecordsBefore: segments wholly
// below the log start offset are removed.
func (l *Log) dropBelowStart(bases []int64) ([]int64, error) {
	for len(bases) > 1 && bases[1] <= l.start {
		s := &segment{base: bases[0], dir: l.dir, fsys: l.fsys}
		if err := removeSegmentFiles(l.fsys, s); err != nil {
			return nil, err
		}
		bases = bases[1:]
	}
	return bases, nil
}

func removeSegmentFiles(fsys FS, s *segment) error {
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if err := fsys.Remove(s.path(ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove %s: %w", s.path(ext), err)
		}
	}
	return nil
}

// openClean trusts the clean-shutdown marker if it matches the active segment and
// its index files; it removes the marker durably before returning true.
func (l *Log) openClean() (bool, error) {
	b, err := readFileAll(l.fsys, l.path(cleanShutdownFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", l.path(cleanShutdownFile), err)
	}
	if err := l.fsys.Remove(l.path(cleanShutdownFile)); err != nil {
		return false, fmt.Errorf("cannot remove %s: %w", l.path(cleanShutdownFile), err)
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return false, fmt.Errorf("cannot sync directory: %w", err)
	}
	c, err := decodeCleanShutdown(b)
	s := l.segs[len(l.segs)-1]
	if err == nil && (c.segBase != s.base || c.segSize != s.size || c.end < s.base) {
		err = fmt.Errorf("marker says segment %d of %d bytes, found %d of %d bytes", c.segBase, c.segSize, s.base, s.size)
	}
	if err == nil {
		err = l.loadActiveIndexes(s, c.segSize)
	}
	if err != nil {
		l.logger.Warn("ignoring clean-shutdown marker; recovering", "file", l.path(cleanShutdownFile), "err", err)
		return false, nil
	}
	s.end, s.maxTS, s.loaded = c.end, c.segMaxTS, true
	l.end, l.durable, l.maxTS, l.maxTSOf = c.end, c.end, c.maxTS, c.maxTSOf
	l.setCreated(s)
	l.dp = durablePoint{seg: s, pos: s.size, offset: s.end, nIdx: len(s.idx), nTidx: len(s.tidx),
		segMaxTS: s.maxTS, maxTS: l.maxTS, maxTSOf: l.maxTSOf}
	l.lastCP = l.dp // Close wrote the indexes and the data is fsynced: no checkpoint is due
	return true, nil
}

// loadActiveIndexes reads the index files of the active segment, which must match
// each other (one time entry per offset entry, no final entry).
func (l *Log) loadActiveIndexes(s *segment, size int64) error {
	ib, err := readFileAll(l.fsys, s.path(".index"))
	if err != nil {
		return err
	}
	tb, err := readFileAll(l.fsys, s.path(".timeindex"))
	if err != nil {
		return err
	}
	idx, err := decodeOffsetIndex(ib, size)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path(".index"), err)
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path(".timeindex"), err)
	}
	if err := matchIndexes(idx, tidx); err != nil {
		return fmt.Errorf("%s: %w", s.path(".timeindex"), err)
	}
	s.idx, s.tidx = idx, tidx
	s.idxFlushed, s.tidxFlushed = len(idx), len(tidx)
	if len(idx) > 0 {
		s.lastIndexedPos = int64(idx[len(idx)-1].pos)
	}
	return nil
}

func matchIndexes(idx []offsetEntry, tidx []timeEntry) error {
	if len(tidx) != len(idx) {
		return fmt.Errorf("%d time entries for %d offset entries", len(tidx), len(idx))
	}
	for i := range idx {
		if idx[i].rel != tidx[i].rel {
			return fmt.Errorf("time entry %d names offset %d, offset entry %d", i, tidx[i].rel, idx[i].rel)
		}
	}
	return nil
}

// setCreated sets the roll-by-age clock of a reopened active segment from its
// first batch's timestamp (as Kafka does), or now if that is unknown or in the future.
func (l *Log) setCreated(s *segment) {
	now := l.opts.Now()
	s.created = now
	if s.size < batchPrefixReadSize {
		return
	}
	f, err := s.acquire()
	if err != nil {
		return
	}
	defer s.release()
	var buf [batchPrefixReadSize]byte
	info, err := readBatchPrefix(f, 0, &buf)
	if err == nil && info.maxTS >= 0 && info.maxTS <= now.UnixMilli() {
		s.created = timeFromMillis(info.maxTS)
	}
}
