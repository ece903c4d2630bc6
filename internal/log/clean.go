package log

// Compaction: Kafka's log cleaner for cleanup.policy=compact (and compact,delete).
//
// What is cleaned. The cleanable range is the rolled segments from the log start up to, not
// including, the first segment that is not yet durable (the recovery-point segment, or one
// the syncer has not fsynced), or whose newest record is younger than MinCompactionLagMs.
// The active segment is never cleaned; Clean rolls it once it is older than segment.ms
// (SegmentMaxAge) or MaxCompactionLagMs, so that a quiet log becomes cleanable.
//
// When. The bytes of the range above the cleaner checkpoint (the end of the last cleaned
// range, "cleaner-offset.checkpoint") are dirty; a log is cleaned when dirty/total reaches
// MinCleanableDirtyRatio, or when its oldest dirty batch is older than MaxCompactionLagMs.
//
// How. A first pass over the range maps each key (its MD5, as Kafka's SkimpyOffsetMap) to its
// latest offset (at most CleanConfig.MaxKeys keys: the range is cut after the segment that
// fills the map). A second pass, one group of consecutive segments at a time (a group fits
// in SegmentBytesMax), copies what stays into a new file (clean_filter.go, Kafka's
// Cleaner.cleanInto with its CleanedTransactionMetadata; one pass over the groups in offset
// order, from the log start, so each cleaning sees every batch left):
//   - A record stays if no later record has its key. Records without a key stay (producers
//     cannot write them to a compacted topic).
//   - Delete horizon (KIP-534). The first cleaning that keeps a tombstone (null value), or a
//     removable marker, writes its horizon into the batch: now + DeleteRetentionMs in the
//     base timestamp, attribute bit 6 set, the records' timestamp deltas rebased so their
//     timestamps do not change. A later cleaning at or past the horizon removes the batch's
//     tombstones, and the marker.
//   - Transactions (CleanConfig). Only offsets below the partition's last stable offset are
//     cleaned (an open transaction's records wait until it ends). An aborted transaction's
//     records map no key and are removed, so an aborted write never supersedes a committed
//     one. A commit or abort marker is removable when no transactional batch of its producer
//     is left between its previous marker and it (Kafka checks batches of the same outcome;
//     any is stricter and keeps a rebuild of producer state from never finding a transaction
//     without its end); an emptied control batch is removable too. Markers at or past
//     CleanConfig.MarkersBelow stay when LimitMarkers (the producer-state snapshot bound).
//   - Producer state. A batch that is its producer's last (CleanConfig.Producers: the one
//     holding its last data offset, or, for a producer without data batches, a marker of
//     its current epoch) stays, empty if nothing else of it does: header only, uncompressed,
//     base timestamp = max timestamp, so that the producer's sequence and epoch survive. A
//     producer no longer active keeps nothing.
//   - A batch keeps its baseOffset, lastOffsetDelta, max timestamp and producer
//     id/epoch/base sequence: offsets are preserved and readers meet gaps. A batch whose
//     records all stay (and whose horizon needs no writing) is copied byte for byte; one that
//     loses some, or gets its horizon, is rewritten and recompressed with its own codec, as
//     Kafka does; one that loses all is dropped unless it is its producer's last.
// Removal happens only when a cleaning runs, which needs dirty data (as in Kafka).
//
// Crash safety. The group is written to "<base>.<end>.cleaned" and fsynced; the checkpoint
// is advanced to <end>; then the file is renamed to "<base>.<end>.swap" (directory fsynced), the old
// segments after base are renamed to "<b>.log.deleted" (and their indexes removed), the new
// indexes written, and the swap file renamed over "<base>.log" (directory fsynced); the
// ".deleted" files are removed once the sync lock is released. At open a ".cleaned" file is
// deleted (the old segments are intact), a ".deleted" one too, and a ".swap" file finishes
// its swap: every segment in (base, end) and base's indexes are removed and the file becomes
// "<base>.log". Either way no record is lost: a crash leaves the old segments or the cleaned
// ones, never neither.
//
// Readers. The cleaning reads immutable segments without any lock; only the swap takes the
// sync lock (a few renames and two directory fsyncs, as retention does). Readers holding an
// old segment keep reading it: its file stays open (never evicted from the file cache) until
// its last reference goes. I/O goes through CleanConfig.Throttle.

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/yardmq/yard/internal/recordbatch"
)

const (
	cleanerCheckpointFile = "cleaner-offset.checkpoint"
	cleanedExt            = ".cleaned"
	swapExt               = ".swap"
	deletedExt            = ".deleted" // a replaced segment's .log, removed after the swap
	// DefaultCleanerMaxKeys bounds the key map of one cleaning (about 40 bytes a key).
	DefaultCleanerMaxKeys = 1 << 20
	cleanWriteBufBytes    = 1 << 20
)

// CleanConfig configures one Clean call.
type CleanConfig struct {
	Throttle *Throttle // bounds the cleaner's reads and writes; nil: unbounded
	MaxKeys  int       // keys mapped per cleaning (0: DefaultCleanerMaxKeys)
	Force    bool      // clean whatever the dirty ratio (not the lag limits)
	// StableOffset: only segments wholly below it are cleaned (the last stable offset);
	// <= 0: no bound.
	StableOffset int64
	// Aborted reports whether producer pid's transactional batch at baseOffset belongs to an
	// aborted transaction; nil: none does.
	Aborted func(pid, baseOffset int64) bool
	// Producers returns the partition's active producers (Kafka's lastRecordsOfActiveProducers):
	// a producer's batch holding its last data offset stays, empty if need be, and so does a
	// marker of its current epoch when it has no data batch left. nil: the producers and their
	// last batches as the cleaned range shows them.
	Producers func() map[int64]ProducerLast
	// LimitMarkers: markers at offsets at or past MarkersBelow stay whatever their delete
	// horizon (the producer-state snapshot that a restart resumes from must not miss the
	// end of a transaction it holds open).
	LimitMarkers bool
	MarkersBelow int64
}

// ProducerLast is what the cleaner needs to know of an active producer.
type ProducerLast struct {
	LastDataOffset int64 // the last offset of its last data batch; -1: none (only markers)
	Epoch          int16
}

// aborted is cc.Aborted for a batch header.
func (cc *CleanConfig) aborted(h *recordbatch.Header) bool {
	return cc.Aborted != nil && h.Transactional() && !h.Control() && cc.Aborted(h.ProducerID, h.BaseOffset)
}

// CleanStats says what a Clean call did.
type CleanStats struct {
	Cleaned        bool  // a cleaning ran (at least one group was swapped)
	Segments       int   // segments replaced
	BytesRead      int64 // bytes of the cleanable range read (both passes)
	BytesBefore    int64 // bytes of the replaced segments
	BytesAfter     int64 // bytes of what replaced them
	RecordsRemoved int64
}

// Clean runs one cleaning of the log if its policy compacts and it is due (see above).
// It is safe to call concurrently with everything else; calls on one log run one at a time.
func (l *Log) Clean(ctx context.Context, cc CleanConfig) (CleanStats, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // Close stops a cleaning
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var st CleanStats
	if cc.MaxKeys <= 0 {
		cc.MaxKeys = DefaultCleanerMaxKeys
	}
	cand, opts, cleanedTo, err := l.cleanable()
	if err != nil || len(cand) == 0 {
		return st, err
	}
	defer func() {
		for _, s := range cand {
			s.decRef()
		}
	}()
	now := opts.Now().UnixMilli()
	n := len(cand)
	for i, s := range cand {
		v, err := l.ensureLoaded(s)
		if err != nil {
			return st, fmt.Errorf("cannot clean %s: %w", l.dir, err)
		}
		if v.maxTS >= 0 && now-v.maxTS < opts.MinCompactionLagMs {
			n = i
			break
		}
	}
	if cc.StableOffset > 0 {
		for i, s := range cand[:n] {
			if s.end > cc.StableOffset {
				n = i
				break
			}
		}
	}
	work := cand[:n]
	if len(work) == 0 {
		return st, nil
	}
	var dirty, total int64
	firstDirty := -1
	for i, s := range work {
		total += s.size
		if s.end > cleanedTo {
			dirty += s.size
			if firstDirty < 0 {
				firstDirty = i
			}
		}
	}
	if firstDirty < 0 || dirty == 0 {
		return st, nil
	}
	due := cc.Force || float64(dirty)/float64(total) >= opts.MinCleanableDirtyRatio
	if !due && opts.MaxCompactionLagMs < math.MaxInt64 {
		ts, err := firstBatchTimestamp(work[firstDirty])
		if err != nil {
			return st, fmt.Errorf("cannot clean %s: %w", l.dir, err)
		}
		due = ts >= 0 && now-ts > opts.MaxCompactionLagMs
	}
	if !due {
		return st, nil
	}
	m, err := l.buildOffsetMap(ctx, cc, &work, &st)
	if err != nil {
		return st, fmt.Errorf("cannot clean %s: %w", l.dir, err)
	}
	end := work[len(work)-1].end
	cr := &cleanRound{cc: &cc, m: m, now: now, retention: max(opts.DeleteRetentionMs, 0),
		committed: map[int64]bool{}, aborted: map[int64]bool{}}
	for _, g := range groupSegments(work, opts.SegmentBytesMax) {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		cr.producers = m.lastOf
		if cc.Producers != nil {
			cr.producers = cc.Producers()
		}
		if err := l.cleanGroup(ctx, cr, g, &st); err != nil {
			return st, fmt.Errorf("cannot clean %s: %w", l.dir, err)
		}
	}
	if err := l.advanceCleanedTo(end); err != nil {
		return st, fmt.Errorf("cannot clean %s: %w", l.dir, err)
	}
	return st, nil
}

// advanceCleanedTo records durably that the log is cleaned up to offset end (the
// cleaner-offset checkpoint): the dirty ratio counts from there, and after a crash the
// segments below it are read as cleaned (offset gaps allowed). A swap writes it before its
// .swap rename, so that a swap finished at open is covered; a cleaning that a crash cuts
// short leaves the rest of its range dirty, to be cleaned again.
func (l *Log) advanceCleanedTo(end int64) error {
	l.mu.Lock()
	cur := l.cleanedTo
	l.mu.Unlock()
	if end <= cur {
		return nil
	}
	if err := writeFileAtomic(l.fsys, l.path(cleanerCheckpointFile), encodeOffsetCheckpoint("YCLN", end)); err != nil {
		return err
	}
	l.mu.Lock()
	l.cleanedTo = max(l.cleanedTo, end)
	l.mu.Unlock()
	return nil
}

// cleanable rolls an old active segment and returns the rolled, durable segments from the
// log start (each with a reference the caller drops).
func (l *Log) cleanable() ([]*segment, Options, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.closing {
		return nil, l.opts, 0, ErrClosed
	}
	opts := l.opts
	if !opts.Compact {
		return nil, opts, 0, nil
	}
	a := l.segs[len(l.segs)-1]
	if age := opts.Now().Sub(a.created); a.size > 0 && l.failed == nil &&
		(age >= opts.SegmentMaxAge || age.Milliseconds() >= opts.MaxCompactionLagMs) {
		if err := l.rollLocked(); err != nil {
			return nil, opts, 0, err
		}
	}
	var cand []*segment
	for _, s := range l.segs[:len(l.segs)-1] {
		if s == l.dp.seg || slices.Contains(l.unsynced, s) || slices.Contains(l.pendingIdx, s) {
			break
		}
		s.incRef()
		cand = append(cand, s)
	}
	return cand, opts, l.cleanedTo, nil
}

// firstBatchTimestamp returns the max timestamp of s's first batch (-1 if none).
func firstBatchTimestamp(s *segment) (int64, error) {
	if s.size < batchPrefixReadSize {
		return -1, nil
	}
	f, err := s.acquire()
	if err != nil {
		return -1, err
	}
	defer s.release()
	var buf [batchPrefixReadSize]byte
	b, err := readBatchPrefix(f, 0, &buf)
	return b.maxTS, err
}

// offsetMap maps key digests to the latest offset of the key, and producers to their last
// batch in the range (what CleanConfig.Producers says when it is nil).
type offsetMap struct {
	keys   map[[16]byte]int64
	lastOf map[int64]ProducerLast
}

// buildOffsetMap reads *work and maps its keys; if the map fills, *work is cut after the
// segment that filled it (the map keeps that segment's keys: records of earlier segments
// superseded in later ones still go).
func (l *Log) buildOffsetMap(ctx context.Context, cc CleanConfig, work *[]*segment, st *CleanStats) (*offsetMap, error) {
	m := &offsetMap{keys: map[[16]byte]int64{}, lastOf: map[int64]ProducerLast{}}
	for i, s := range *work {
		err := forEachBatch(ctx, cc.Throttle, s, func(batch []byte, h *recordbatch.Header) error {
			st.BytesRead += int64(len(batch))
			if h.ProducerID >= 0 {
				// As a producer's state: a new epoch forgets the batches of the old one.
				p, ok := m.lastOf[h.ProducerID]
				if !ok || p.Epoch != h.ProducerEpoch {
					p = ProducerLast{LastDataOffset: -1, Epoch: h.ProducerEpoch}
				}
				if !h.Control() {
					p.LastDataOffset = h.LastOffset()
				}
				m.lastOf[h.ProducerID] = p
			}
			if h.Control() || cc.aborted(h) {
				return nil
			}
			return forEachRecord(batch, h, func(r *recordbatch.Record) {
				if r.Key != nil {
					m.keys[md5.Sum(r.Key)] = h.BaseOffset + int64(r.OffsetDelta)
				}
			})
		})
		if err != nil {
			return nil, err
		}
		if len(m.keys) >= cc.MaxKeys {
			*work = (*work)[:i+1]
			break
		}
	}
	return m, nil
}

// forEachBatch calls fn for each batch of s (immutable: rolled), checking its CRC.
func forEachBatch(ctx context.Context, t *Throttle, s *segment, fn func(batch []byte, h *recordbatch.Header) error) error {
	f, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	buf := make([]byte, scanBufBytes)
	var bufPos, bufLen int64
	for pos := int64(0); pos < s.size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := window(f, &buf, &bufPos, &bufLen, pos, batchPrefixReadSize, s.size)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", s.path(".log"), err)
		}
		info, err := parseBatchPrefix(hdr)
		if err != nil {
			return fmt.Errorf("cannot read %s at %d: %w", s.path(".log"), pos, err)
		}
		if err := t.Wait(ctx, int(info.size)); err != nil {
			return err
		}
		whole, err := window(f, &buf, &bufPos, &bufLen, pos, info.size, s.size)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", s.path(".log"), err)
		}
		h, err := recordbatch.ParseHeader(whole)
		if err == nil {
			err = checkBatchCRC(whole)
		}
		if err != nil {
			return fmt.Errorf("cannot read %s at %d: %w", s.path(".log"), pos, err)
		}
		if err := fn(whole, &h); err != nil {
			return err
		}
		pos += info.size
	}
	return nil
}

// forEachRecord calls fn for each record of a (non-control) batch.
func forEachRecord(batch []byte, h *recordbatch.Header, fn func(r *recordbatch.Record)) error {
	body, err := recordbatch.Body(batch, h, nil, recordbatch.InflateLimit(len(batch)))
	if err != nil {
		return fmt.Errorf("cannot read batch at offset %d: %w", h.BaseOffset, err)
	}
	it := recordbatch.NewRecords(body, h.RecordCount)
	var r recordbatch.Record
	for it.Next(&r) {
		fn(&r)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("cannot read batch at offset %d: %w", h.BaseOffset, err)
	}
	return nil
}

// groupSegments splits segs into runs of consecutive segments whose sizes add up to at most
// maxBytes (and whose offsets fit a segment's 32-bit relative offsets).
func groupSegments(segs []*segment, maxBytes int64) [][]*segment {
	var groups [][]*segment
	for i := 0; i < len(segs); {
		j, size := i+1, segs[i].size
		for j < len(segs) && size+segs[j].size <= maxBytes && segs[j].end-segs[i].base < math.MaxUint32 {
			size += segs[j].size
			j++
		}
		groups = append(groups, segs[i:j])
		i = j
	}
	return groups
}

func cleanFileName(base, end int64, ext string) string {
	return fmt.Sprintf("%020d.%020d%s", base, end, ext)
}

// parseCleanFileName parses "<20 digits>.<20 digits><ext>" for ext .cleaned or .swap.
func parseCleanFileName(name string) (base, end int64, ext string, ok bool) {
	for _, e := range []string{cleanedExt, swapExt} {
		if !strings.HasSuffix(name, e) {
			continue
		}
		stem := strings.TrimSuffix(name, e)
		if len(stem) != 41 || stem[20] != '.' {
			return 0, 0, "", false
		}
		b, err1 := strconv.ParseUint(stem[:20], 10, 63)
		n, err2 := strconv.ParseUint(stem[21:], 10, 63)
		if err1 != nil || err2 != nil || n <= b {
			return 0, 0, "", false
		}
		return int64(b), int64(n), e, true
	}
	return 0, 0, "", false
}

// cleanGroup writes the cleaned copy of g and swaps it in.
func (l *Log) cleanGroup(ctx context.Context, cr *cleanRound, g []*segment, st *CleanStats) error {
	cc := cr.cc
	base, end := g[0].base, g[len(g)-1].end
	l.mu.Lock()
	interval := int64(l.opts.IndexIntervalBytes)
	l.mu.Unlock()
	ns := l.newSegment(base)
	ns.end, ns.loaded = end, true
	ns.dirSynced.Store(true)
	ns.cleaned.Store(true)
	abandon := func() { ns.decRef() }
	cleanedPath := l.path(cleanFileName(base, end, cleanedExt))
	out, err := l.fsys.OpenFile(cleanedPath, osCreateTrunc, filePerm)
	if err != nil {
		abandon()
		return fmt.Errorf("cannot create %s: %w", cleanedPath, err)
	}
	fail := func(err error) error {
		_ = out.Close()
		_ = l.fsys.Remove(cleanedPath)
		abandon()
		return err
	}
	ix := indexer{s: ns, interval: interval}
	var wbuf []byte
	var removed, before int64
	changed := false // a batch was dropped or rewritten
	flush := func() error {
		if len(wbuf) == 0 {
			return nil
		}
		if err := cc.Throttle.Wait(ctx, len(wbuf)); err != nil {
			return err
		}
		if _, err := out.WriteAt(wbuf, ns.size); err != nil {
			return fmt.Errorf("cannot write %s: %w", cleanedPath, err)
		}
		ns.size += int64(len(wbuf))
		wbuf = wbuf[:0]
		return nil
	}
	emit := func(b []byte) error {
		info, err := parseBatchPrefix(b)
		if err != nil {
			panic("BUG: the cleaner wrote a batch it cannot parse: " + err.Error())
		}
		ix.add(ns.size+int64(len(wbuf)), info, ns.maxTS)
		ns.maxTS = max(ns.maxTS, info.maxTS)
		wbuf = append(wbuf, b...)
		if len(wbuf) >= cleanWriteBufBytes {
			return flush()
		}
		return nil
	}
	for _, s := range g {
		before += s.size
		err := forEachBatch(ctx, cc.Throttle, s, func(batch []byte, h *recordbatch.Header) error {
			st.BytesRead += int64(len(batch))
			out, keep, rewritten, err := cr.filter(batch, h)
			if err != nil {
				return err
			}
			removed += int64(h.RecordCount) - int64(keep)
			changed = changed || rewritten || out == nil
			if out == nil {
				return nil
			}
			return emit(out)
		})
		if err != nil {
			return fail(err)
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if !changed && len(g) == 1 {
		return fail(nil) // nothing to gain
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("cannot sync %s: %w", cleanedPath, err))
	}
	if err := out.Close(); err != nil {
		_ = l.fsys.Remove(cleanedPath)
		abandon()
		return fmt.Errorf("cannot close %s: %w", cleanedPath, err)
	}
	ns.hwSize = ns.size
	ns.tidx = append(ns.tidx, ns.finalTimeEntry())
	if err := l.advanceCleanedTo(end); err != nil {
		_ = l.fsys.Remove(cleanedPath)
		abandon()
		return err
	}
	swapped, err := l.swapIn(g, ns, cleanedPath)
	if err != nil || !swapped {
		abandon()
		return err
	}
	st.Cleaned = true
	st.Segments += len(g)
	st.BytesBefore += before
	st.BytesAfter += ns.size
	st.RecordsRemoved += removed
	l.logger.Info("cleaned segments", "first", g[0].path(".log"), "segments", len(g),
		"bytes_before", before, "bytes_after", ns.size, "records_removed", removed)
	return nil
}

// swapIn replaces the segments g (still in the log, consecutive, not active) by ns, whose
// data is in cleanedPath, fsynced. It reports false (and removes the file) if g is no longer
// in the log (retention, truncation or a close came first).
func (l *Log) swapIn(g []*segment, ns *segment, cleanedPath string) (bool, error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	i := slices.Index(l.segs, g[0])
	ok := !l.closed && !l.closing && i >= 0 && i+len(g) < len(l.segs)
	for k := 0; ok && k < len(g); k++ {
		ok = l.segs[i+k] == g[k] && !g[k].removed
	}
	l.mu.Unlock()
	if !ok {
		_ = l.fsys.Remove(cleanedPath)
		return false, nil
	}
	for _, s := range g {
		// Readers that hold s keep its data once the name holds the cleaned copy.
		if err := s.files.keepOpen(s); err != nil {
			_ = l.fsys.Remove(cleanedPath)
			return false, err
		}
	}
	base, end := g[0].base, g[len(g)-1].end
	swapPath := l.path(cleanFileName(base, end, swapExt))
	if err := l.fsys.Rename(cleanedPath, swapPath); err != nil {
		_ = l.fsys.Remove(cleanedPath)
		return false, fmt.Errorf("cannot rename %s: %w", cleanedPath, err)
	}
	// From here on the swap is decided: a crash is finished by the next open, and so must
	// an error be (the log fails: reopening it finishes the swap).
	// The old segments after base are renamed aside (unlinking a large file takes a while:
	// that happens after the sync lock is released) and their indexes removed.
	err := l.fsys.SyncDir(l.dir)
	var aside []string
	for _, s := range g[1:] {
		if err != nil {
			break
		}
		p := s.path(".log") + deletedExt
		if rerr := l.fsys.Rename(s.path(".log"), p); rerr != nil {
			err = fmt.Errorf("cannot rename %s: %w", s.path(".log"), rerr)
			break
		}
		aside = append(aside, p)
	}
	if err == nil {
		err = finishSwapFiles(l.fsys, l.dir, base, end, g[1:])
	}
	if err == nil {
		err = ns.rewriteIndexes(ns.idx, ns.tidx)
	}
	if err == nil {
		if rerr := l.fsys.Rename(swapPath, ns.path(".log")); rerr != nil {
			err = fmt.Errorf("cannot rename %s: %w", swapPath, rerr)
		}
	}
	if err == nil {
		if derr := l.fsys.SyncDir(l.dir); derr != nil {
			err = fmt.Errorf("cannot sync directory %s: %w", l.dir, derr)
		}
	}
	l.mu.Lock()
	if err != nil {
		l.failed = fmt.Errorf("cannot swap in cleaned segment %s: %w", swapPath, err)
		l.logger.Error("log failed", "dir", l.dir, "err", l.failed)
		l.mu.Unlock()
		return false, err
	}
	i = slices.Index(l.segs, g[0])
	for _, s := range g {
		s.removed = true
		l.size -= s.size
	}
	l.size += ns.size
	l.segs = slices.Replace(l.segs, i, i+len(g), ns)
	l.mu.Unlock()
	for _, s := range g {
		s.decRef()
	}
	err = l.recomputeMaxTimestamp()
	l.syncMu.Unlock()
	defer l.syncMu.Lock()
	for _, p := range aside { // a leftover is removed at the next open
		if rerr := l.fsys.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			l.logger.Warn("cannot remove a replaced segment", "file", p, "err", rerr)
		}
	}
	return true, err
}

// finishSwapFiles removes the files a swap replaces: the segments after base (later, given
// or found in the directory; a .log already renamed aside is gone) and base's indexes, which
// are rewritten.
func finishSwapFiles(fsys FS, dir string, base, end int64, later []*segment) error {
	for _, s := range later {
		if err := removeSegmentFiles(fsys, s); err != nil {
			return err
		}
	}
	for _, ext := range []string{".index", ".timeindex"} {
		p := filepath.Join(dir, segmentName(base, ext))
		if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove %s: %w", p, err)
		}
	}
	return nil
}

// recoverCleaning handles the cleaner's files found at open (see the package comment of
// this file): ".cleaned" files are removed, ".swap" files finish their swap. logs is the set
// of segment bases found, updated.
func (l *Log) recoverCleaning(names []string, logs map[int64]bool) error {
	for _, name := range names {
		base, end, ext, _ := parseCleanFileName(name)
		p := l.path(name)
		if ext == cleanedExt {
			l.logger.Info("removing interrupted cleaning output", "file", p)
			if err := l.fsys.Remove(p); err != nil {
				return fmt.Errorf("cannot remove %s: %w", p, err)
			}
			continue
		}
		l.logger.Info("finishing interrupted swap of a cleaned segment", "file", p)
		var later []*segment
		for b := range logs {
			if b > base && b < end {
				later = append(later, &segment{base: b, dir: l.dir, fsys: l.fsys})
				delete(logs, b)
			}
		}
		if err := finishSwapFiles(l.fsys, l.dir, base, end, later); err != nil {
			return err
		}
		if err := l.fsys.Rename(p, l.path(segmentName(base, ".log"))); err != nil {
			return fmt.Errorf("cannot rename %s: %w", p, err)
		}
		logs[base] = true
	}
	if len(names) > 0 {
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return fmt.Errorf("cannot sync directory: %w", err)
		}
	}
	return nil
}

// readCleanerCheckpoint reads the end of the last cleaned range (0 if none) and marks the
// segments below it as cleaned.
func (l *Log) readCleanerCheckpoint() error {
	b, err := readFileAll(l.fsys, l.path(cleanerCheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", l.path(cleanerCheckpointFile), err)
	}
	v, err := decodeOffsetCheckpoint(b, "YCLN")
	if err != nil {
		// Without it cleaned segments would read as damaged: read every rolled one as cleaned.
		l.logger.Warn("damaged cleaner checkpoint; every rolled segment may have offset gaps",
			"file", l.path(cleanerCheckpointFile), "err", err)
		v = l.segs[len(l.segs)-1].base
	}
	l.cleanedTo = v
	for _, s := range l.segs {
		if s.base < v {
			s.cleaned.Store(true)
		}
	}
	return nil
}
