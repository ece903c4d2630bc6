package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A segment is one <base>.log file plus its two indexes. Rolled segments are
// immutable; the active one grows under Log.mu. Files of rolled segments are opened
// and their indexes loaded lazily (first read or retention check), so opening a
// log does not touch old segments.
type segment struct {
	base  int64
	dir   string
	fsys  FS
	files *FileCache // opens and closes the .log file; see FileCache

	// Guarded by Log.mu while the segment is active; immutable once rolled.
	size           int64 // bytes in the .log file
	end            int64 // offset after the last batch
	maxTS          int64 // largest batch maxTimestamp (-1 if none); valid if loaded
	lastIndexedPos int64
	created        time.Time // for roll by age
	// hwSize is how many bytes readers may see (batches below the high watermark).
	// Guarded by Log.mu.
	hwSize  int64
	removed bool // no longer part of the log (retention, truncation); guarded by Log.mu
	// The log's largest timestamp and its offset when this segment rolled.
	rollMaxTS, rollMaxTSOf int64

	refs atomic.Int32 // the log's reference plus one per outstanding ReadResult

	// loadMu guards lazy loading and the in-memory indexes of rolled segments; for
	// the active segment the indexes are appended under Log.mu (readers copy the
	// slice headers under Log.mu: entries are never modified).
	loadMu sync.Mutex
	loaded bool // idx/tidx/maxTS valid
	// idxFromFile: idx/tidx were loaded from the index files as they were (not built by
	// appends or a scan), so a read that finds an entry pointing elsewhere rebuilds them.
	idxFromFile bool
	idx         []offsetEntry
	tidx        []timeEntry

	cache cacheEntry // the open .log file, if any; guarded by files.mu

	// flushMu guards writing the index files; idxFlushed/tidxFlushed count the
	// entries already in the files.
	flushMu     sync.Mutex
	idxFlushed  int
	tidxFlushed int
	dirSynced   atomic.Bool // the .log name is durable (directory fsynced after create)
	// cleaned: the segment was written by the cleaner (or lies below the cleaner checkpoint)
	// and may have offset gaps between its batches and before its end.
	cleaned atomic.Bool
}

func segmentName(base int64, ext string) string {
	return fmt.Sprintf("%020d%s", base, ext)
}

// parseSegmentName parses "<20 digits><ext>".
func parseSegmentName(name string) (base int64, ext string, ok bool) {
	if len(name) < 21 {
		return 0, "", false
	}
	digits, ext := name[:20], name[20:]
	switch ext {
	case ".log", ".index", ".timeindex":
	default:
		return 0, "", false
	}
	if strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, "", false
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return v, ext, true
}

func (s *segment) path(ext string) string { return filepath.Join(s.dir, segmentName(s.base, ext)) }

// acquire returns the .log file, opened through the file cache if it is not open, and
// pinned open until the matching release.
func (s *segment) acquire() (File, error) { return s.files.acquire(s) }

// release drops the pin of an acquire.
func (s *segment) release() { s.files.release(s) }

func (s *segment) incRef() { s.refs.Add(1) }

// decRef drops a reference; the last one closes the file. Retention removes the
// file names first, so ranges handed to readers stay readable until released.
func (s *segment) decRef() {
	n := s.refs.Add(-1)
	if n < 0 {
		panic("BUG: segment reference count below zero for " + s.path(".log"))
	}
	if n > 0 {
		return
	}
	s.files.close(s)
}

// readBatchPrefix reads and parses the header of the batch at pos.
func readBatchPrefix(f File, pos int64, buf *[batchPrefixReadSize]byte) (batchInfo, error) {
	if _, err := f.ReadAt(buf[:], pos); err != nil {
		if errors.Is(err, io.EOF) {
			return batchInfo{}, fmt.Errorf("%w: header truncated", ErrCorruptBatch)
		}
		return batchInfo{}, err
	}
	return parseBatchPrefix(buf[:])
}

// scanResult is the outcome of scanning a segment file.
type scanResult struct {
	end     int64 // position after the last valid batch
	next    int64 // offset after the last valid batch
	maxTS   int64
	maxTSOf int64 // last offset of the batch holding maxTS
	err     error // why scanning stopped before the file size (nil: clean)
}

const scanBufBytes = 1 << 20

// scanBatches reads batches from pos to size, checking each header, offset
// continuity (baseOffset must equal the expected next offset) and CRC, and calls fn
// for each valid batch. It stops at the first invalid one.
//
// In a cleaned segment (gaps) a batch may start past the expected offset: compaction removes
// records and batches and keeps the offsets of the rest.
func scanBatches(f File, pos, size, next int64, gaps bool, fn func(pos int64, b batchInfo)) scanResult {
	r := scanResult{end: pos, next: next, maxTS: -1, maxTSOf: -1}
	buf := make([]byte, scanBufBytes)
	var bufPos, bufLen int64 // buf holds file bytes [bufPos, bufPos+bufLen)
	for r.end < size {
		if size-r.end < batchPrefixReadSize {
			r.err = fmt.Errorf("%w: %d trailing bytes, less than a header", ErrCorruptBatch, size-r.end)
			return r
		}
		hdr, err := window(f, &buf, &bufPos, &bufLen, r.end, batchPrefixReadSize, size)
		if err != nil {
			r.err = err
			return r
		}
		info, err := parseBatchPrefix(hdr)
		if err != nil {
			r.err = err
			return r
		}
		if r.end+info.size > size {
			r.err = fmt.Errorf("%w: batch of %d bytes runs past the end of the file", ErrCorruptBatch, info.size)
			return r
		}
		if info.baseOffset != r.next && !(gaps && info.baseOffset > r.next) {
			r.err = fmt.Errorf("%w: base offset %d, expected %d", ErrCorruptBatch, info.baseOffset, r.next)
			return r
		}
		whole, err := window(f, &buf, &bufPos, &bufLen, r.end, info.size, size)
		if err != nil {
			r.err = err
			return r
		}
		if err := checkBatchCRC(whole); err != nil {
			r.err = err
			return r
		}
		if fn != nil {
			fn(r.end, info)
		}
		if info.maxTS > r.maxTS {
			r.maxTS, r.maxTSOf = info.maxTS, info.lastOffset()
		}
		r.end += info.size
		r.next = info.lastOffset() + 1
	}
	return r
}

// window returns file bytes [pos, pos+n) through the read-ahead buffer.
func window(f File, buf *[]byte, bufPos, bufLen *int64, pos, n, size int64) ([]byte, error) {
	if pos >= *bufPos && pos+n <= *bufPos+*bufLen {
		return (*buf)[pos-*bufPos : pos-*bufPos+n], nil
	}
	if n > int64(len(*buf)) {
		*buf = make([]byte, n)
	}
	want := min(int64(len(*buf)), size-pos)
	m, err := f.ReadAt((*buf)[:want], pos)
	if int64(m) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("cannot read at position %d: %w", pos, err)
	}
	*bufPos, *bufLen = pos, int64(m)
	return (*buf)[:n], nil
}

// indexer applies the index rule (see index.go) batch by batch.
type indexer struct {
	s        *segment
	interval int64
}

// add records b at pos in the in-memory indexes; segMaxBefore is the segment's
// largest timestamp before b.
func (ix indexer) add(pos int64, b batchInfo, segMaxBefore int64) {
	s := ix.s
	if pos >= s.lastIndexedPos+ix.interval {
		rel := uint32(b.baseOffset - s.base)
		s.idx = append(s.idx, offsetEntry{rel: rel, pos: uint32(pos)})
		s.tidx = append(s.tidx, timeEntry{ts: segMaxBefore, rel: rel})
		s.lastIndexedPos = pos
	}
}

// finalTimeEntry is appended when a segment stops being active.
func (s *segment) finalTimeEntry() timeEntry {
	if s.end-s.base > math.MaxUint32 {
		panic("BUG: segment spans more than 2^32 offsets")
	}
	return timeEntry{ts: s.maxTS, rel: uint32(s.end - s.base)}
}

// flushIndexes writes index entries not yet in the files (up to idxN/tidxN) and
// fsyncs them if sync is set.
func (s *segment) flushIndexes(idx []offsetEntry, tidx []timeEntry, sync bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if err := flushIndexFile(s.fsys, s.path(".index"), &s.idxFlushed, len(idx), offsetEntryLen,
		func() []byte { return appendOffsetEntries(nil, idx[s.idxFlushed:]) }, sync); err != nil {
		return err
	}
	return flushIndexFile(s.fsys, s.path(".timeindex"), &s.tidxFlushed, len(tidx), timeEntryLen,
		func() []byte { return appendTimeEntries(nil, tidx[s.tidxFlushed:]) }, sync)
}

func flushIndexFile(fsys FS, name string, flushed *int, n, entryLen int, enc func() []byte, sync bool) error {
	// Entries are only ever appended (truncation rewrites the files and the counts),
	// so a file already holding more than n entries has these n as its prefix.
	if *flushed >= n && !sync {
		return nil
	}
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("cannot open index %s: %w", name, err)
	}
	defer f.Close()
	if *flushed < n {
		off := int64(*flushed) * int64(entryLen)
		// Truncate first: after recovery the file may hold stale entries past the prefix.
		if err := f.Truncate(off); err != nil {
			return fmt.Errorf("cannot truncate index %s: %w", name, err)
		}
		if _, err := f.WriteAt(enc(), off); err != nil {
			return fmt.Errorf("cannot write index %s: %w", name, err)
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("cannot sync index %s: %w", name, err)
		}
	}
	*flushed = max(*flushed, n)
	return nil
}

// rewriteIndexes replaces both index files with exactly idx/tidx, durably.
func (s *segment) rewriteIndexes(idx []offsetEntry, tidx []timeEntry) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if err := writeFileAtomic(s.fsys, s.path(".index"), appendOffsetEntries(nil, idx)); err != nil {
		return err
	}
	if err := writeFileAtomic(s.fsys, s.path(".timeindex"), appendTimeEntries(nil, tidx)); err != nil {
		return err
	}
	s.idxFlushed, s.tidxFlushed = len(idx), len(tidx)
	return nil
}
