package log

import (
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
)

// Range is a byte range of a segment file holding whole batches.
type Range struct {
	File File // io.ReaderAt; the OS implementation (OSFile) also has Fd() for sendfile
	Pos  int64
	Len  int64
}

// ReadResult holds ranges of segment files, which stay open (even if retention
// deletes them) until Release.
type ReadResult struct {
	Ranges   []Range
	Bytes    int64 // total
	segs     []*segment
	released atomic.Bool
}

// Release lets the files of the ranges be closed. Calling it twice is harmless.
func (r *ReadResult) Release() {
	if r == nil || r.released.Swap(true) {
		return
	}
	for _, s := range r.segs {
		s.release()
		s.decRef()
	}
}

// AppendTo copies the bytes of the ranges into dst.
func (r *ReadResult) AppendTo(dst []byte) ([]byte, error) {
	for _, rg := range r.Ranges {
		n := len(dst)
		dst = append(dst, make([]byte, rg.Len)...)
		if _, err := rg.File.ReadAt(dst[n:], rg.Pos); err != nil {
			return dst[:n], fmt.Errorf("cannot read %s at %d: %w", rg.File.Name(), rg.Pos, err)
		}
	}
	return dst, nil
}

// readAheadBytes is the buffer size for walking batch headers on the read path.
const readAheadBytes = 16 << 10

// Read returns whole batches starting with the batch that contains offset, up to
// maxBytes but at least one whole batch if one is available, never at or beyond
// the high watermark. Reads stay within one segment (callers fetch again for more).
func (l *Log) Read(offset int64, maxBytes int) (*ReadResult, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if offset < l.start || offset > l.hw {
		start, hw := l.start, l.hw
		l.mu.Unlock()
		return nil, fmt.Errorf("cannot read offset %d: %w (log start %d, high watermark %d)", offset, ErrOffsetOutOfRange, start, hw)
	}
	if offset == l.hw {
		l.mu.Unlock()
		return &ReadResult{}, nil
	}
	i := l.segmentForLocked(offset)
	for {
		r, err := l.readFrom(i, offset, maxBytes)
		if r != nil || err != nil {
			return r, err
		}
		// Nothing at or after offset in segment i: cleaning removed its last batches (or
		// all of them). Read on from the next segment, as Kafka does.
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		i = l.segmentForLocked(offset) + 1
		if i >= len(l.segs) || l.segs[i].base >= l.hw {
			l.mu.Unlock()
			return &ReadResult{}, nil
		}
		offset = l.segs[i].base
	}
}

// readFrom reads from segment i at offset, with l.mu held (and released); a nil result and
// error mean that segment i holds nothing at or after offset below the high watermark.
func (l *Log) readFrom(i int, offset int64, maxBytes int) (*ReadResult, error) {
	s := l.segs[i]
	limit := s.hwSize
	active := i == len(l.segs)-1
	var idx []offsetEntry
	if active {
		idx = s.idx
	}
	s.incRef()
	l.mu.Unlock()
	if !active {
		v, err := l.ensureLoaded(s)
		if err != nil {
			s.decRef()
			return nil, err
		}
		idx = v.idx
	}
	r, badIndex, err := l.readSegment(s, idx, offset, limit, int64(maxBytes))
	if badIndex {
		l.badIndex(s, active)
	}
	if err != nil {
		s.decRef()
		if errors.Is(err, ErrCorruptBatch) {
			l.rate.Warn("corrupt batch "+s.path(".log"), "corrupt record batch in segment", "err", err)
		}
		return nil, err
	}
	if r == nil {
		s.decRef()
		if active {
			return &ReadResult{}, nil
		}
		return nil, nil
	}
	return r, nil
}

// segmentForLocked returns the index of the segment holding offset.
func (l *Log) segmentForLocked(offset int64) int {
	lo, hi := 0, len(l.segs)
	for hi-lo > 1 { // the last segment with base <= offset
		m := (lo + hi) / 2
		if l.segs[m].base <= offset {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// readSegment returns the ranges holding offset with s's file pinned (released with the
// ReadResult), or nil, with nothing pinned, when there is nothing to read.
//
// Nothing read from the file is trusted to frame the range (see readcheck.go): the walk
// starts at an index entry only if the batch there has the entry's offset (badIndex says one
// did not), every batch walked must start at the offset after its predecessor, and the first
// batch must be followed by its successor or by the end of the readable bytes, so that a
// damaged length field is an ErrCorruptBatch rather than misframed bytes for a consumer.
func (l *Log) readSegment(s *segment, idx []offsetEntry, offset, limit, maxBytes int64) (r *ReadResult, badIndex bool, err error) {
	f, err := s.acquire()
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if r == nil {
			s.release()
		}
	}()
	bp := l.bufPool.Get().(*[]byte)
	defer l.bufPool.Put(bp)
	w := headerWalker{f: f, buf: *bp, limit: limit, base: s.base, gaps: s.cleaned.Load()}
	defer func() { *bp = w.buf }()
	pos, next, badIndex := w.startAt(idx, floorIndexByRel(idx, uint32(offset-s.base)))
	var first batchInfo
	for {
		if pos >= limit {
			return nil, badIndex, nil
		}
		b, err := w.next(pos, next)
		if err != nil {
			return nil, badIndex, fmt.Errorf("cannot read %s at %d: %w", s.path(".log"), pos, err)
		}
		next = b.lastOffset() + 1
		if b.lastOffset() >= offset {
			first = b
			break
		}
		pos += b.size
	}
	start, end := pos, pos+first.size
	if end < limit {
		if err := w.followsAt(end, next); err != nil {
			return nil, badIndex, fmt.Errorf("cannot read %s at %d: %w: the batch's length does not lead to the next batch (%v)",
				s.path(".log"), start, ErrCorruptBatch, err)
		}
	}
	target := min(start+maxBytes, limit)
	if end < target {
		// Walk from the last index entry below the target that holds, else from end. (The
		// active segment's index may already name batches at or past limit, not yet readable.)
		p, pNext := end, next
		if i := floorIndexByPos(idx, target-1); i >= 0 && int64(idx[i].pos) > end {
			if q, qNext, bad := w.startAt(idx, i); !bad {
				p, pNext = q, qNext
			} else {
				badIndex = true
			}
		}
		for p < target {
			b, err := w.next(p, pNext)
			if err != nil || p+b.size > target {
				break // an error is the next read's to report, at its first batch
			}
			p += b.size
			pNext = b.lastOffset() + 1
		}
		end = max(end, p)
	}
	return &ReadResult{Ranges: []Range{{File: f, Pos: start, Len: end - start}}, Bytes: end - start, segs: []*segment{s}}, badIndex, nil
}

// headerWalker reads batch headers through a read-ahead buffer.
type headerWalker struct {
	f              File
	buf            []byte
	bufPos, bufLen int64
	limit          int64
	base           int64 // the segment's base offset, for startAt
	gaps           bool  // a cleaned segment: batches may start past the expected offset
}

func (w *headerWalker) at(pos int64) (batchInfo, error) {
	if pos+batchPrefixReadSize > w.limit {
		return batchInfo{}, fmt.Errorf("%w: header past the readable end %d", ErrCorruptBatch, w.limit)
	}
	h, err := window(w.f, &w.buf, &w.bufPos, &w.bufLen, pos, batchPrefixReadSize, w.limit)
	if err != nil {
		return batchInfo{}, err
	}
	b, err := parseBatchPrefix(h)
	if err == nil && pos+b.size > w.limit {
		err = fmt.Errorf("%w: batch past the readable end %d", ErrCorruptBatch, w.limit)
	}
	return b, err
}

// segmentView is a consistent snapshot of a rolled segment's indexes.
type segmentView struct {
	idx   []offsetEntry
	tidx  []timeEntry
	maxTS int64
}

// ensureLoaded loads a rolled segment's indexes, rebuilding them from the
// segment if they are missing or inconsistent, and returns a snapshot of them.
// An index that exists but cannot be read (I/O error, permissions) is an error
// naming the file.
func (l *Log) ensureLoaded(s *segment) (segmentView, error) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.loaded {
		return segmentView{s.idx, s.tidx, s.maxTS}, nil
	}
	idx, tidx, why, err := readRolledIndexes(s)
	if err != nil {
		return segmentView{}, err
	}
	if why == nil {
		s.idx, s.tidx, s.maxTS, s.loaded = idx, tidx, tidx[len(tidx)-1].ts, true
		s.idxFlushed, s.tidxFlushed = len(idx), len(tidx)
		s.idxFromFile = true
		return segmentView{s.idx, s.tidx, s.maxTS}, nil
	}
	l.logger.Warn("rebuilding index from its segment", "file", s.path(".index"), "reason", why.Error())
	// Log.mu may be held by the caller (TruncateTo): the interval is read as before it.
	if err := l.reindexLocked(s, int64(l.opts.IndexIntervalBytes)); err != nil {
		return segmentView{}, err
	}
	return segmentView{s.idx, s.tidx, s.maxTS}, nil
}

// readRolledIndexes reads a rolled segment's index files. why says what is wrong
// with them (they will be rebuilt); err is an I/O error that is not "missing".
func readRolledIndexes(s *segment) (idx []offsetEntry, tidx []timeEntry, why, err error) {
	ib, err := readFileAll(s.fsys, s.path(".index"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot read index %s: %w", s.path(".index"), err)
	}
	tb, err := readFileAll(s.fsys, s.path(".timeindex"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot read index %s: %w", s.path(".timeindex"), err)
	}
	if idx, why = decodeOffsetIndex(ib, s.size); why != nil {
		return nil, nil, why, nil
	}
	if tidx, why = decodeTimeIndex(tb); why != nil {
		return nil, nil, why, nil
	}
	if len(tidx) == 0 || int64(tidx[len(tidx)-1].rel) != s.end-s.base {
		return nil, nil, errors.New("time index lacks its final entry"), nil
	}
	if why = matchIndexes(idx, tidx[:len(tidx)-1]); why != nil {
		return nil, nil, why, nil
	}
	return idx, tidx, nil, nil
}
