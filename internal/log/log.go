// Package log is yard's storage engine: the segmented, append-only log that holds
// one partition (or one stream) of record batches.
//
// Model. A Log is a directory of segments. Each segment is a file of whole record
// batches in the Kafka RecordBatch v2 layout (see batch.go), named by the 20-digit
// offset of its first batch, with a sparse offset index and a time index beside it
// (see index.go), plus small checkpoint files (checkpoint.go). Appends go to the
// last ("active") segment, one write system call per append, after validating
// every batch's header and CRC-32C (AppendCheckedNoWait: the header only, for a caller that
// has just checked the CRC itself) and assigning offsets by rewriting each batch's
// baseOffset in place. The active segment rolls when it would exceed
// SegmentBytesMax or is older than SegmentMaxAge.
//
// Durability (sync.go). One syncer goroutine per log fsyncs whatever was written
// since its last fsync and then wakes every waiter whose data is covered: N
// concurrent appenders under SyncAlways share one fsync (group commit). Readers see
// only offsets below the high watermark, which under SyncAlways is the durable end.
// A roll never fsyncs under the append lock: the syncer fsyncs rolled segments
// first, then moves the recovery point past them, and only then fsyncs (and
// acknowledges) the active one. After a failed fsync the log refuses every further
// append and sync until it is reopened, because the kernel may have dropped the
// dirty pages it failed to write (the "fsyncgate" lesson): retrying the fsync could
// report success for lost data. A failed write is undone (the file is cut back)
// and only that append fails: a full disk is not fatal.
//
// Recovery (open.go, recover.go). Close writes a clean-shutdown marker; opening
// after a clean close reads no segment data. Otherwise the syncer's recovery-point
// checkpoint says up to which segment and position everything (data and indexes)
// is durable, and only the bytes after it are scanned and CRC-checked. A torn tail
// is truncated and logged; damage followed by a valid batch in the same segment is
// reported as ErrCorruptBatch and nothing is truncated. Old segments are never read
// at open, and their index files are loaded (and, if missing or corrupt, rebuilt)
// lazily on first use. A file that is not part of a log makes Open fail
// (ErrForeignFile). Since a clean open reads no data, damage that happens on disk
// later is first met by a read, which checks what frames its range (readcheck.go).
//
// Files (filecache.go). Segment files are opened on use through a FileCache, which
// may be shared by many logs and keeps at most its bound open, closing the least
// recently used file nobody is using; an append, fsync, scan or unreleased
// ReadResult pins its file open. Fsync works on the file, not the descriptor, so
// closing a file with unsynced writes loses nothing: the log tracks what is unsynced
// per segment, and its next fsync, through a new descriptor, covers it.
//
// Locking. Log.mu guards the segment list and every field of the log and of the
// active segment; it is held only for memory updates and the append's single write.
// Log.syncMu serialises fsync rounds and structural changes (retention, truncation,
// close); one more fsync of the active segment may run beside a round (overlapSync, under
// cpMu, which every structural change of the active segment also takes). Log.cpMu serialises
// writing the recovery point (index flushes, the checkpoint
// file) with those structural changes, but not with fsync rounds: the periodic checkpoint
// runs on a goroutine of its own (checkpointLoop) so that the appenders waiting for the next
// round do not wait for its fsyncs as well. Lock order is syncMu, then cpMu, then mu, then a
// segment's loadMu, then its flushMu; the FileCache's lock is a leaf under all of them. Segments are
// reference counted, and their files pinned by readers, so that files stay open for
// readers after retention removes their names.
package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"syscall"

	"github.com/yardmq/yard/internal/ratelog"
	"github.com/yardmq/yard/internal/recordbatch"
)

// Sentinel errors, matched with errors.Is.
var (
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrCorruptBatch     = recordbatch.ErrCorruptBatch
	ErrClosed           = errors.New("log closed")
	// ErrForeignFile: the directory holds a file that is not part of a yard log.
	ErrForeignFile = errors.New("foreign file in log directory")
	// ErrFailed: an fsync failed (or a failed write could not be undone); the log refuses
	// appends until reopened. Unlike a failed write (a full disk), retrying cannot help.
	ErrFailed = errors.New("log failed")
)

// IsNoSpace reports whether err says the file system is full (or the quota used up): a
// condition that passes once space is freed, unlike a failed fsync.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Log is one partition's log. All methods are safe for concurrent use.
type Log struct {
	dir    string
	fsys   FS
	files  *FileCache
	logger *slog.Logger
	rate   *ratelog.Limiter // for lines a reader can repeat at will (corrupt data on the read path)

	syncMu  sync.Mutex // see the package comment
	cpMu    sync.Mutex // held while writing the recovery point; see the package comment
	mu      sync.Mutex
	cleanMu sync.Mutex // one Clean at a time (clean.go)

	opts    Options
	segs    []*segment // sorted by base; the last one is active
	start   int64      // log start offset
	end     int64      // next offset to assign
	size    int64      // total bytes of all segments
	hw      int64      // high watermark
	durable int64      // offsets below are fsynced
	dp      durablePoint
	lastCP  durablePoint // the last recovery point written
	maxTS   int64
	maxTSOf int64
	// cleanedTo: the end of the last cleaned range (cleaner-offset.checkpoint); segments
	// below it may have offset gaps.
	cleanedTo int64
	failed    error // sticky: set by a failed fsync (or failed undo of a failed write)
	closing   bool  // Close has started: no more appends
	closed    bool

	// visible: under SyncJournal, the end of every append not yet below the high watermark,
	// oldest first (MarkDurable moves the high watermark over them).
	visible []visiblePoint

	pendingIdx []*segment // rolled segments whose indexes are not yet flushed and fsynced
	unsynced   []*segment // rolled segments whose data is not yet fsynced

	changed chan struct{} // closed when hw advances (or moves back on truncation)
	// changedTaken: Changed handed out the current channel since it was made.
	changedTaken bool
	syncDone     chan struct{} // closed after each sync round
	// roundTo: the log end the running (or last) sync round's fsync covers, set when it takes
	// its snapshot; a waiter beyond it may fsync beside the round (overlapSync).
	roundTo  int64
	kick     chan struct{} // wakes the syncer; buffered 1
	lazyKick chan struct{} // wakes the syncer after lazySyncDelay; buffered 1
	cpKick   chan struct{} // wakes checkpointLoop; buffered 1
	bufPool  sync.Pool     // *[]byte read-ahead buffers for Read
	stop     chan struct{}
	wg       sync.WaitGroup
}

// durablePoint is a position up to which the log is durable; the syncer writes it
// as the recovery-point checkpoint.
type durablePoint struct {
	seg      *segment
	pos      int64 // bytes of seg durable
	offset   int64 // offset after the last batch before pos
	nIdx     int   // offset-index entries of seg below pos
	nTidx    int   // time-index entries of seg below pos
	segMaxTS int64 // seg's largest timestamp below pos
	maxTS    int64 // log's largest timestamp below the point
	maxTSOf  int64
}

// visiblePoint is where an append under SyncJournal ended: its segment, the segment's size and
// the log end after it.
type visiblePoint struct {
	seg *segment
	pos int64
	end int64
}

// AppendResult describes what an append wrote.
type AppendResult struct {
	BaseOffset, LastOffset int64
	Batches                int
	Bytes                  int
}

// Append appends and waits until the data is durable per the sync policy.
func (l *Log) Append(b []byte) (AppendResult, error) {
	res, err := l.AppendNoWait(b)
	if err != nil {
		return res, err
	}
	return res, l.WaitDurable(context.Background(), res.LastOffset)
}

// AppendNoWait validates the concatenated batches in b, assigns offsets by
// rewriting each batch's baseOffset in place, writes b with one write call and
// returns without waiting for durability (see WaitDurable).
func (l *Log) AppendNoWait(b []byte) (AppendResult, error) {
	n, err := validateBatches(b)
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot append: %w", err)
	}
	return l.appendNoWait(b, n)
}

// AppendCheckedNoWait is AppendNoWait for one whole batch whose CRC the caller has just
// verified (recordbatch.CheckCRC, as a broker checking what a producer sent does): the log
// checks its header and length but does not compute the CRC a second time.
func (l *Log) AppendCheckedNoWait(batch []byte) (AppendResult, error) {
	p, err := recordbatch.ParsePrefix(batch)
	if err == nil && p.Size != int64(len(batch)) {
		err = fmt.Errorf("%w: batch length %d, %d bytes given", ErrCorruptBatch, p.Size, len(batch))
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot append: %w", err)
	}
	return l.appendNoWait(batch, 1)
}

func (l *Log) appendNoWait(b []byte, n int) (AppendResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writableLocked(); err != nil {
		return AppendResult{}, err
	}
	if err := l.maybeRollLocked(b); err != nil {
		return AppendResult{}, err
	}
	s := l.segs[len(l.segs)-1]
	f, err := s.acquire()
	if err != nil {
		return AppendResult{}, err
	}
	defer s.release()
	res := AppendResult{BaseOffset: l.end, Batches: n, Bytes: len(b)}
	next := l.end
	for p := 0; p < len(b); {
		info, _ := parseBatchPrefix(b[p:])
		putInt64(b[p:], next)
		next += info.lastDelta + 1
		p += int(info.size)
	}
	if wn, err := f.WriteAt(b, s.size); err != nil {
		return AppendResult{}, l.undoWriteLocked(s, f, wn, err)
	}
	l.indexAppendLocked(s, b)
	res.LastOffset = next - 1
	s.size += int64(len(b))
	l.size += int64(len(b))
	s.end = next
	l.end = next
	switch l.opts.SyncPolicy {
	case SyncAlways:
		l.kickSyncerLazily()
	case SyncJournal:
		l.visible = append(l.visible, visiblePoint{seg: s, pos: s.size, end: next})
	default:
		s.hwSize = s.size
		l.setHWLocked(l.end)
	}
	return res, nil
}

// undoWriteLocked handles a failed write: the file may hold part of b, so cut it
// back; if even that fails the log cannot know its own tail and goes read-only.
func (l *Log) undoWriteLocked(s *segment, f File, wn int, werr error) error {
	err := fmt.Errorf("cannot append to %s: %w", s.path(".log"), werr)
	if wn == 0 {
		if sz, serr := f.Size(); serr == nil && sz == s.size {
			return err
		}
	}
	if terr := f.Truncate(s.size); terr != nil {
		l.failed = fmt.Errorf("cannot undo partial write to %s: %w", s.path(".log"), terr)
		l.logger.Error("log failed", "dir", l.dir, "err", l.failed)
	}
	return err
}

// indexAppendLocked adds index entries and tracks timestamps for the batches in b,
// now at s.size.
func (l *Log) indexAppendLocked(s *segment, b []byte) {
	ix := indexer{s: s, interval: int64(l.opts.IndexIntervalBytes)}
	for p := 0; p < len(b); {
		info, _ := parseBatchPrefix(b[p:])
		ix.add(s.size+int64(p), info, s.maxTS)
		if info.maxTS > s.maxTS {
			s.maxTS = info.maxTS
		}
		if info.maxTS > l.maxTS {
			l.maxTS, l.maxTSOf = info.maxTS, info.lastOffset()
		}
		p += int(info.size)
	}
}

func putInt64(b []byte, v int64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func (l *Log) writableLocked() error {
	if l.closed || l.closing {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("cannot append: log %s failed and must be reopened: %w: %w", l.dir, ErrFailed, l.failed)
	}
	return nil
}

// maybeRollLocked starts a new segment if b does not fit the active one, the active
// one is too old, or its relative offsets would overflow uint32.
func (l *Log) maybeRollLocked(b []byte) error {
	s := l.segs[len(l.segs)-1]
	if s.size == 0 {
		return nil
	}
	var offsets int64
	for p := 0; p < len(b); {
		info, _ := parseBatchPrefix(b[p:])
		offsets += info.lastDelta + 1
		p += int(info.size)
	}
	full := s.size+int64(len(b)) > l.opts.SegmentBytesMax
	old := l.opts.Now().Sub(s.created) >= l.opts.SegmentMaxAge
	overflow := l.end+offsets-s.base >= math.MaxUint32
	if !full && !old && !overflow {
		return nil
	}
	return l.rollLocked()
}

// rollLocked starts a new segment at the log end offset. The old segment is
// fsynced by the syncer, not here, so appenders never wait for a roll's fsync; the
// syncer fsyncs rolled segments before the active one and writes the recovery point
// before acknowledging anything in the new segment (see syncRound).
func (l *Log) rollLocked() error {
	old := l.segs[len(l.segs)-1]
	ns, err := l.createSegment(l.end)
	if err != nil {
		return err
	}
	old.tidx = append(old.tidx, old.finalTimeEntry())
	old.rollMaxTS, old.rollMaxTSOf = l.maxTS, l.maxTSOf
	l.unsynced = append(l.unsynced, old)
	l.pendingIdx = append(l.pendingIdx, old)
	l.segs = append(l.segs, ns)
	l.kickSyncer()
	return nil
}

// createSegment creates an empty segment file starting at base and puts it in the file
// cache, open.
func (l *Log) createSegment(base int64) (*segment, error) {
	s := l.newSegment(base)
	s.end, s.created, s.loaded = base, l.opts.Now(), true
	f, err := l.fsys.OpenFile(s.path(".log"), osCreateTrunc, filePerm)
	if err != nil {
		return nil, fmt.Errorf("cannot create segment: %w", err)
	}
	s.files.insert(s, f)
	return s, nil
}

// newSegment returns the segment starting at base, holding the log's reference; its file
// is opened on first use.
func (l *Log) newSegment(base int64) *segment {
	s := &segment{base: base, dir: l.dir, fsys: l.fsys, files: l.files, maxTS: -1}
	s.refs.Store(1)
	return s
}

// advanceDurableLocked records that everything up to dp is fsynced.
func (l *Log) advanceDurableLocked(dp durablePoint) {
	if dp.offset < l.durable {
		return
	}
	l.durable = dp.offset
	l.dp = dp
	switch l.opts.SyncPolicy {
	case SyncAlways:
		l.setHWLocked(dp.offset)
	case SyncJournal:
		l.markDurableLocked(dp.offset)
	}
}

// MarkDurable tells a log under SyncJournal that its offsets below end are durable (in the
// journal): readers may see them. Smaller values than before change nothing.
func (l *Log) MarkDurable(end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.markDurableLocked(end)
}

func (l *Log) markDurableLocked(end int64) {
	n := 0
	for n < len(l.visible) && l.visible[n].end <= end {
		v := l.visible[n]
		v.seg.hwSize = max(v.seg.hwSize, v.pos)
		n++
	}
	if n == 0 {
		return
	}
	hw := l.visible[n-1].end
	clear(l.visible[:n])
	l.visible = l.visible[n:]
	if len(l.visible) == 0 {
		l.visible = l.visible[:0:0] // let the backing array go once drained
	}
	if hw > l.hw {
		l.setHWLocked(hw)
	}
}

// setHWLocked moves the high watermark and wakes long polls.
func (l *Log) setHWLocked(hw int64) {
	if hw == l.hw {
		return
	}
	l.hw = hw
	if l.changedTaken { // nobody holds the channel otherwise: save the allocation
		close(l.changed)
		l.changed = make(chan struct{})
		l.changedTaken = false
	}
}

// StartOffset returns the first readable offset.
func (l *Log) StartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start
}

// SegmentBase returns the base offset of the segment that holds offset: the largest segment
// base at or below it (the log start offset if offset is below that).
func (l *Log) SegmentBase(offset int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	base := l.start
	for _, s := range l.segs {
		if s.base > offset {
			break
		}
		base = max(base, s.base)
	}
	return base
}

// EndOffset returns the next offset to be assigned.
func (l *Log) EndOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

// HighWatermark returns the offset below which readers see batches: the durable
// end under SyncAlways, the end offset otherwise.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw
}

// Changed returns a channel closed when the high watermark next moves.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changedTaken = true
	return l.changed
}

// Size returns the total bytes of all segment files.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// MaxTimestamp returns the largest batch maxTimestamp and that batch's last
// offset, or -1, -1 if the log holds no timestamps.
func (l *Log) MaxTimestamp() (ts int64, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxTS < 0 {
		return -1, -1
	}
	return l.maxTS, l.maxTSOf
}

// SetOptions applies new segment, retention, index and sync settings at run time.
// FS, FileCache, Now and Logger cannot change and are ignored.
func (l *Log) SetOptions(opts Options) {
	l.mu.Lock()
	defer l.mu.Unlock()
	opts.FS, opts.FileCache, opts.Now, opts.Logger = l.opts.FS, l.opts.FileCache, l.opts.Now, l.opts.Logger
	opts.SyncObserver = l.opts.SyncObserver
	l.opts = opts.withDefaults()
	if l.opts.SyncPolicy != SyncAlways && l.opts.SyncPolicy != SyncJournal && !l.closed {
		s := l.segs[len(l.segs)-1]
		s.hwSize = s.size
		for _, r := range l.segs {
			r.hwSize = r.size
		}
		l.setHWLocked(l.end)
	}
	l.kickSyncer()
}
