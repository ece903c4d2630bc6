package log

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Read-path validation. After a clean shutdown the log reads no segment data at open, and
// rolled segments' index files are only checked for shape when loaded, so bytes damaged on
// disk since they were written (a length field, an index entry) are first met by a read.
// The read path never frames a range with a value it has not checked against the offsets
// the log assigned: batches are contiguous and each starts at the offset after the previous
// one, so a batch's baseOffset says whether a position really is a batch start.
//
//   - an index entry whose position does not hold the batch of the entry's offset is
//     skipped for the closest earlier one that does (or the segment start); a rolled
//     segment's index loaded from its file is then rebuilt from the segment, once;
//   - every batch walked must start at the expected offset, and the first batch of a range
//     must end where the next batch starts (or at the readable end): otherwise the read
//     fails with ErrCorruptBatch, which the Kafka front end answers with CORRUPT_MESSAGE, and
//     the log says so (rate-limited) instead of handing misframed bytes to consumers, which
//     would reject them or take them for a partial batch and fetch the same offset forever.

// floorIndexByRel returns the index of the last entry with rel <= rel, or -1.
func floorIndexByRel(es []offsetEntry, rel uint32) int {
	return sort.Search(len(es), func(i int) bool { return es[i].rel > rel }) - 1
}

// floorIndexByPos returns the index of the last entry with pos <= pos, or -1.
func floorIndexByPos(es []offsetEntry, pos int64) int {
	return sort.Search(len(es), func(i int) bool { return int64(es[i].pos) > pos }) - 1
}

// startAt returns where to start walking for entry i of idx (-1: the segment start) and the
// offset of the batch there: entry i if the batch at its position has the entry's offset,
// else the closest earlier entry that does (bad reports that one did not), else the segment
// start.
func (w *headerWalker) startAt(idx []offsetEntry, i int) (pos, next int64, bad bool) {
	for ; i >= 0; i-- {
		e := idx[i]
		if base, err := w.baseAt(int64(e.pos)); err == nil && base == w.base+int64(e.rel) {
			return int64(e.pos), base, bad
		}
		bad = true
	}
	return 0, w.base, bad
}

// baseAt returns the baseOffset field of the batch that should start at pos.
func (w *headerWalker) baseAt(pos int64) (int64, error) {
	if pos < 0 || pos+8 > w.limit {
		return 0, fmt.Errorf("%w: position %d past the readable end %d", ErrCorruptBatch, pos, w.limit)
	}
	h, err := window(w.f, &w.buf, &w.bufPos, &w.bufLen, pos, 8, w.limit)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(h)), nil
}

// next parses the batch at pos, which must start at offset want.
func (w *headerWalker) next(pos, want int64) (batchInfo, error) {
	b, err := w.at(pos)
	if err == nil && b.baseOffset != want && !(w.gaps && b.baseOffset > want) {
		err = fmt.Errorf("%w: batch at position %d has base offset %d, expected %d", ErrCorruptBatch, pos, b.baseOffset, want)
	}
	return b, err
}

// followsAt checks that a batch starting at offset want starts at pos.
func (w *headerWalker) followsAt(pos, want int64) error {
	base, err := w.baseAt(pos)
	if err == nil && base != want && !(w.gaps && base > want) {
		err = fmt.Errorf("base offset %d at position %d, expected %d", base, pos, want)
	}
	return err
}

// badIndex handles an index entry found not to point at its batch: a rolled segment's index
// loaded from its file is rebuilt from the segment; others (built in memory, or the active
// segment's loaded at a clean open) are read around until they are next loaded.
func (l *Log) badIndex(s *segment, active bool) {
	if active {
		l.rate.Warn("bad index", "index entry does not point at a batch; reading around it", "file", s.path(".index"))
		return
	}
	l.mu.Lock()
	interval := int64(l.opts.IndexIntervalBytes)
	removed := s.removed // replaced by a cleaned segment: the index files are not its own
	l.mu.Unlock()
	if removed {
		return
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if !s.idxFromFile {
		return
	}
	l.rate.Warn("bad index", "index entry does not point at a batch; rebuilding the index", "file", s.path(".index"))
	if err := l.reindexLocked(s, interval); err != nil {
		l.logger.Error("cannot rebuild index", "file", s.path(".index"), "err", err)
	}
}

// reindexLocked rebuilds a rolled segment's indexes from its data (an entry every interval
// bytes) and rewrites their files. Called with s.loadMu held, and maybe Log.mu (TruncateTo),
// so it must not take Log.mu.
func (l *Log) reindexLocked(s *segment, interval int64) error {
	f, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	// Fresh slices: readers may hold the old ones.
	s.idx, s.tidx, s.lastIndexedPos, s.maxTS, s.idxFromFile = nil, nil, 0, -1, false
	ix := indexer{s: s, interval: interval}
	r := scanBatches(f, 0, s.size, s.base, s.cleaned.Load(), func(p int64, b batchInfo) {
		ix.add(p, b, s.maxTS)
		s.maxTS = max(s.maxTS, b.maxTS)
	})
	if r.err != nil || r.next > s.end || (r.next != s.end && !s.cleaned.Load()) {
		s.loaded = false
		return fmt.Errorf("cannot rebuild index: %w: %s at position %d: %v (segment should end at offset %d)",
			ErrCorruptBatch, s.path(".log"), r.end, r.err, s.end)
	}
	s.tidx = append(s.tidx, s.finalTimeEntry())
	if err := s.rewriteIndexes(s.idx, s.tidx); err != nil {
		s.loaded = false
		return err
	}
	s.loaded = true
	return nil
}
