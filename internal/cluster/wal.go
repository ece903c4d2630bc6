package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/log"
)

// ErrCorruptWAL reports damage in a WAL segment that is not the torn tail of the last one:
// recovery cannot tell what was lost, so it refuses to guess.
var ErrCorruptWAL = errors.New("corrupt raft WAL")

// wal is the host's write-ahead log: one segmented, append-only file sequence shared by every
// group of the host, so that one write and one fsync persist a whole round of Ready batches
// (format in walrecord.go). It is owned by the host's loop goroutine and has no lock.
//
// A failed write (a full disk) leaves the WAL usable: the next write first cuts the active
// segment back to its last whole record (the failed write may have left part of one), so a
// retry once space is freed writes the same records again, whole. A failed fsync breaks it
// for good: the kernel may have dropped the dirty pages, and a later fsync could lie.
type wal struct {
	dir         string
	segBytesMax int64
	log         *slog.Logger
	fs          log.FS // files written (reads go to the os package): OSFS, or a test's

	segs   []*walSegment // ascending; the last is active
	f      log.File      // the active segment
	size   int64         // bytes of whole records in the active segment
	torn   bool          // a write failed: the file may hold more than size bytes
	broken error         // set by a failed fsync: nothing more is accepted
}

// walSegment is one file of the WAL with, per group, the highest entry index it holds.
type walSegment struct {
	seq      uint64
	maxIndex map[uint64]uint64
}

// recoveredGroup is what the WAL holds for one group: its last HardState and its entries,
// contiguous, as Raft last wrote them.
type recoveredGroup struct {
	hs   *pb.HardState
	ents []*pb.Entry
}

func (w *wal) path(seq uint64) string {
	return filepath.Join(w.dir, fmt.Sprintf("%020d.wal", seq))
}

// openWAL opens (or creates) the WAL in dir and replays it. A torn tail of the last segment
// is cut off; damage anywhere else is ErrCorruptWAL.
func openWAL(dir string, segBytesMax int64, logger *slog.Logger, fsys log.FS) (*wal, map[uint64]*recoveredGroup, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("cannot create WAL directory: %w", err)
	}
	if fsys == nil {
		fsys = log.OSFS{}
	}
	w := &wal{dir: dir, segBytesMax: segBytesMax, log: logger, fs: fsys}
	seqs, err := w.list()
	if err != nil {
		return nil, nil, err
	}
	groups := make(map[uint64]*recoveredGroup)
	for i, seq := range seqs {
		last := i == len(seqs)-1
		seg, valid, err := w.replaySegment(seq, last, groups)
		if err != nil {
			return nil, nil, err
		}
		w.segs = append(w.segs, seg)
		if last {
			if err := w.openActive(seq, valid); err != nil {
				return nil, nil, err
			}
		}
	}
	if len(seqs) == 0 {
		if err := w.create(1, nil); err != nil {
			return nil, nil, err
		}
	}
	return w, groups, nil
}

func (w *wal) list() ([]uint64, error) {
	des, err := os.ReadDir(w.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list WAL directory: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".wal")
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(name, 10, 64)
		if err != nil || len(name) != 20 {
			return nil, fmt.Errorf("cannot open WAL: foreign file %s", de.Name())
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// replaySegment applies one segment's records to groups and returns the segment and the
// length of its valid prefix.
func (w *wal) replaySegment(seq uint64, last bool, groups map[uint64]*recoveredGroup) (*walSegment, int64, error) {
	b, err := os.ReadFile(w.path(seq))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read WAL segment: %w", err)
	}
	seg := &walSegment{seq: seq, maxIndex: make(map[uint64]uint64)}
	if len(b) < walHeaderBytes || string(b[:7]) != walMagic || b[7] != walVersion {
		if last && len(b) < walHeaderBytes {
			return seg, 0, nil // created, header torn: rewritten by openActive
		}
		return nil, 0, fmt.Errorf("%w: segment %d has a bad header", ErrCorruptWAL, seq)
	}
	pos := walHeaderBytes
	for pos < len(b) {
		r, n, err := decodeRecord(b[pos:])
		if err != nil {
			if last {
				w.log.Warn("raft WAL: cutting a torn tail", "segment", seq, "offset", pos, "bytes", len(b)-pos, "error", err)
				return seg, int64(pos), nil
			}
			return nil, 0, fmt.Errorf("%w: segment %d at %d: %w", ErrCorruptWAL, seq, pos, err)
		}
		// Entry data must not alias b beyond this call's life: b is ours, so it may.
		replayRecord(r, groups, seg)
		pos += n
	}
	return seg, int64(pos), nil
}

func replayRecord(r walRecord, groups map[uint64]*recoveredGroup, seg *walSegment) {
	if r.typ == recRemoved {
		delete(groups, r.group)
		return
	}
	g := groups[r.group]
	if g == nil {
		g = &recoveredGroup{}
		groups[r.group] = g
	}
	switch r.typ {
	case recHardState:
		g.hs = r.hs
	case recEntries:
		if len(r.ents) == 0 {
			return
		}
		first := r.ents[0].GetIndex()
		if n := len(g.ents); n > 0 && first <= g.ents[n-1].GetIndex() && first >= g.ents[0].GetIndex() {
			g.ents = g.ents[:first-g.ents[0].GetIndex()]
		} else if n > 0 && first != g.ents[n-1].GetIndex()+1 {
			g.ents = nil // a gap or a rewrite below: a snapshot must cover what came before
		}
		g.ents = append(g.ents, r.ents...)
		last := r.ents[len(r.ents)-1].GetIndex()
		seg.maxIndex[r.group] = max(seg.maxIndex[r.group], last)
	}
}

func (w *wal) openActive(seq uint64, valid int64) error {
	f, err := w.fs.OpenFile(w.path(seq), os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open WAL segment: %w", err)
	}
	if valid < walHeaderBytes {
		if _, err := f.WriteAt([]byte(walHeader), 0); err != nil {
			f.Close()
			return fmt.Errorf("cannot write WAL header: %w", err)
		}
		valid = walHeaderBytes
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return fmt.Errorf("cannot truncate WAL tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot fsync WAL: %w", err)
	}
	w.f, w.size = f, valid
	return nil
}

// create starts segment seq with its header and first records (a roll's HardStates),
// durably, and makes it active. On failure the new file is removed: the WAL stays as it was.
func (w *wal) create(seq uint64, first []byte) error {
	f, err := w.fs.OpenFile(w.path(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create WAL segment: %w", err)
	}
	b := append([]byte(walHeader), first...)
	undo := func(err error) error {
		f.Close()
		if rerr := w.fs.Remove(w.path(seq)); rerr != nil {
			return errors.Join(err, fmt.Errorf("cannot remove the failed WAL segment: %w", rerr))
		}
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return undo(fmt.Errorf("cannot write WAL segment: %w", err))
	}
	if err := f.Sync(); err != nil {
		return undo(fmt.Errorf("cannot fsync WAL segment: %w", err))
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return undo(err)
	}
	w.f, w.size = f, int64(len(b))
	w.segs = append(w.segs, &walSegment{seq: seq, maxIndex: make(map[uint64]uint64)})
	return nil
}

// write appends buf (whole records) to the active segment and, if sync, fsyncs it.
// maxIndex names, per group, the highest entry index in buf. A failed write may be retried
// (the WAL cuts what it left first); after a failed fsync the WAL refuses everything: the
// kernel may have dropped the dirty pages.
func (w *wal) write(buf []byte, maxIndex map[uint64]uint64, sync bool) error {
	if w.broken != nil {
		return w.broken
	}
	if w.torn {
		if err := w.f.Truncate(w.size); err != nil {
			return fmt.Errorf("cannot cut a failed write off the raft WAL: %w", err)
		}
		w.torn = false
	}
	if len(buf) > 0 {
		if _, err := w.f.WriteAt(buf, w.size); err != nil {
			w.torn = true
			return fmt.Errorf("cannot write raft WAL: %w", err)
		}
		w.size += int64(len(buf))
		seg := w.segs[len(w.segs)-1]
		for g, i := range maxIndex {
			seg.maxIndex[g] = max(seg.maxIndex[g], i)
		}
	}
	if sync {
		if err := w.f.Sync(); err != nil {
			w.broken = fmt.Errorf("cannot fsync raft WAL: %w", err)
			return w.broken
		}
	}
	return nil
}

// full reports whether the active segment should be rolled.
func (w *wal) full() bool { return w.size >= w.segBytesMax }

// roll closes the active segment and starts the next one with states, the hardstate
// records of every group (so older segments only ever matter for their entries). If the
// next segment cannot be created (a full disk), the active one stays and roll may be retried.
func (w *wal) roll(states []byte) error {
	if err := w.write(nil, nil, true); err != nil {
		return err
	}
	old := w.f
	if err := w.create(w.segs[len(w.segs)-1].seq+1, states); err != nil {
		return err
	}
	if err := old.Close(); err != nil {
		return fmt.Errorf("cannot close WAL segment: %w", err)
	}
	return nil
}

// gc removes the oldest segments whose entries are all covered by their group's snapshot,
// as reported by compacted (the first index still needed, minus one).
func (w *wal) gc(compacted func(group uint64) uint64) error {
	n := 0
	for _, seg := range w.segs[:len(w.segs)-1] {
		needed := false
		for g, i := range seg.maxIndex {
			if i > compacted(g) {
				needed = true
				break
			}
		}
		if needed {
			break
		}
		n++
	}
	if n == 0 {
		return nil
	}
	for _, seg := range w.segs[:n] {
		if err := os.Remove(w.path(seg.seq)); err != nil {
			return fmt.Errorf("cannot remove WAL segment: %w", err)
		}
	}
	w.segs = slices.Delete(w.segs, 0, n)
	return atomicfile.SyncDir(w.dir)
}

func (w *wal) close() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("cannot close raft WAL: %w", err)
	}
	return nil
}
