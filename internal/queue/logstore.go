package queue

// LogStore: a durable queue's messages on the log engine.
//
// Layout: <dir>/messages is a log with one batch per message (record.go), so a message's
// sequence number IS its log offset; <dir>/settled is a log of settlement entries (acks with
// the sizes of the acked messages, purges, delivered-through marks, delivery counts). Recovery replays the settlement log over the message log:
// a message is live if it is at or after the message log's start, not settled, and either
// persistent or written by the current run (transient messages do not survive a restart, as
// in RabbitMQ).
//
// Write coalescing: Append does not write each message itself. It encodes the message's
// batch into a write buffer and returns a Waiter for the offset the message will get (the
// store is its message log's only writer, so that offset is the log end plus the number of
// buffered messages). The buffer is written with one AppendNoWait (one write system call)
// when it exceeds writeBufferBytes; when a Waiter for a message in it is waited on (a
// publisher confirm: under load the buffer fills while the previous group commit's fsync runs,
// and the next Wait writes it all at once); flushDelay after the first buffered append (for
// messages nobody waits for, such as transient ones); when ReadFrom or NotifyReadable need a
// buffered message; and at Close. A confirm still waits for the fsync (Waiter.Wait writes,
// then waits for durability). A failed write leaves the store failed: the queue has counted
// the lost messages, so later appends are refused rather than given positions the log
// does not have.
//
// Reclaim: once every message below a position is settled, the message log's start is raised
// there (DeleteRecordsBefore drops whole segments); settlement entries that only name
// messages below the new start are dropped from the settlement log the same way. The
// settlement log is tracked in chunks (first offset, largest sequence number named) so that
// memory stays small however many settlements were written.
//
// Priority levels: level n >= 1 of a priority queue is a LogStore of its own in
// <dir>/level-<n> (Level), opened at OpenLogStore if it exists, else at its first message.
// The store at <dir> is level 0 and owns the others: Close and Drop include them.
//
// Restart accounting: Recovery.Live bounds the live messages (positions minus settlements)
// and Recovery.Bytes their payload, from the cumulated payload each message record carries
// (record.go) minus the sizes settlement entries carry: two message reads, however deep the
// queue. Delivery counts (x-delivery-count) of queues with x-delivery-limit are recorded as
// settlement-log entries batched like acks, and handed back with the messages (Stored.Deliveries); a crash loses at most the
// last settleFlushDelay of them.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
)

const (
	messageSegmentBytes = 64 << 20
	settleSegmentBytes  = 4 << 20
	settleChunkEntries  = 1024
	recoverReadBytes    = 1 << 20
	// settleBatchMax and settleFlushDelay: acknowledgements are buffered and written as one
	// settlement entry per this many, or after this delay, so that a consumer acking one
	// message at a time does not cost one write system call per message. A crash loses at
	// most the buffered ones, which are then delivered again (at-least-once).
	settleBatchMax   = 512
	settleFlushDelay = 2 * time.Millisecond
	// settleSyncInterval: how often written settlements are forced to stable storage when
	// messages are synced on every confirm (see OpenLogStore).
	settleSyncInterval = time.Second
	// writeBufferBytes: the write buffer is written once it holds this much.
	writeBufferBytes = 64 << 10
	// defaultFlushDelay: how long a buffered message waits for company when nobody waits
	// for it.
	defaultFlushDelay = time.Millisecond
)

// LogStoreOptions configure OpenLogStore.
type LogStoreOptions struct {
	SyncPolicy   log.SyncPolicy
	SyncInterval time.Duration
	Now          func() time.Time // nil: time.Now
	// FlushDelay bounds how long an appended message stays in the write buffer when no
	// Waiter is waited on for it (default 1ms).
	FlushDelay time.Duration
	// SegmentBytes is the size at which the message log starts a new segment (default 64
	// MiB): settled messages give their disk back a whole segment at a time.
	SegmentBytes int64
	FS           log.FS // nil: the real file system (tests inject faults)
	// FileCache bounds the segment files open at once, shared with the broker's other logs
	// (nil: each log has its own).
	FileCache *log.FileCache
	// SyncObserver is told about the message logs' group commits (metrics); nil = nobody.
	SyncObserver log.SyncObserver
}

type settleChunk struct {
	first  int64  // settlement-log offset of the chunk's first entry
	maxSeq uint64 // largest sequence number the chunk names
	n      int
}

// LogStore is a Store on two logs. Append, Settle, SettleRange, Delivered and ReadFrom run
// under the owning queue's lock (which guards rbuf and the recovered state); mu guards the
// reclaim state shared with the reclaimer goroutine.
type LogStore struct {
	dir        string
	msgs, acks *log.Log
	now        func() time.Time

	rbuf     []byte
	rec      Recovery
	settled  map[uint64]struct{} // recovered settlements at/after rec.From not yet passed
	ranges   [][2]uint64         // recovered settled ranges [from, to)
	oldEnd   uint64              // transient messages below this are from a previous run
	delivThr uint64              // recovered delivered-through mark
	deliv    map[uint64]int      // recovered delivery counts not yet read back
	pbytes   uint64              // persistent payload bytes cumulated through the last Append

	// The write path (logstore_write.go).
	pmu          sync.Mutex        // guards the settlement buffer: pending ... flushArm
	pending      [][2]uint64       // settled sequence numbers and persistent sizes
	pendingSpare [][2]uint64       // a written pending slice, for reuse
	counts       map[uint64]uint64 // delivery counts to record
	purged       [][2]uint64       // purged ranges (from, num) to record
	delivered    uint64            // delivered-through mark to record, 0 if none
	flushArm     bool
	amu          sync.Mutex // serialises settlement writes; guards ackBuf, ackWBuf
	ackBuf       []byte
	ackWBuf      []byte

	fmu        sync.Mutex // serialises message writes, in order
	wmu        sync.Mutex // guards the message buffer: wq ... werr
	wq         []byte     // buffered message batches, in sequence order
	wspare     []byte     // a written buffer, for reuse
	wqHint     int        // the size of the last buffer written: a new buffer's capacity
	wn         int64      // how many messages wq holds
	wflight    int        // bytes of a buffer being written now (taken from wq)
	wbase      int64      // the position of wq's first message
	written    int64      // the message log's end: what writes have handed to it
	wArmed     bool       // wtimer is set to flush
	werr       error      // sticky: an fsync failed or the store is closed
	wfail      error      // the last message write failed (a full disk); cleared by one that succeeds
	wtimer     *time.Timer
	wkick      chan struct{} // wakes the writer goroutine
	flushDelay time.Duration

	opts   LogStoreOptions
	levels map[int]*LogStore // guarded by mu

	mu      sync.Mutex
	chunks  []settleChunk
	target  uint64
	kick    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

// OpenLogStore opens (creating or recovering) the store in dir.
func OpenLogStore(dir string, o LogStoreOptions) (*LogStore, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = defaultFlushDelay
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = messageSegmentBytes
	}
	lo := log.Options{SegmentBytesMax: o.SegmentBytes, SyncPolicy: o.SyncPolicy, SyncInterval: o.SyncInterval, RetentionMs: -1, RetentionBytes: -1, FS: o.FS, FileCache: o.FileCache, SyncObserver: o.SyncObserver}
	msgs, err := log.Open(datadir.QueueMessages(dir), lo)
	if err != nil {
		return nil, fmt.Errorf("cannot open queue messages: %w", err)
	}
	lo.SegmentBytesMax = settleSegmentBytes
	if lo.SyncPolicy == log.SyncAlways {
		// Settlements are written at once (a kill -9 loses none) but forced to the disk
		// only every settleSyncInterval: nothing waits for them, and losing some to a power
		// failure only delivers their messages again (at-least-once). An fsync per group
		// commit round here doubled the journal commits and took CPU from every message.
		lo.SyncPolicy, lo.SyncInterval = log.SyncInterval, settleSyncInterval
	}
	acks, err := log.Open(datadir.QueueSettled(dir), lo)
	if err != nil {
		msgs.Close()
		return nil, fmt.Errorf("cannot open queue settlements: %w", err)
	}
	s := &LogStore{dir: dir, msgs: msgs, acks: acks, now: o.Now, settled: map[uint64]struct{}{},
		deliv: map[uint64]int{}, counts: map[uint64]uint64{},
		kick: make(chan struct{}, 1), wkick: make(chan struct{}, 1), stop: make(chan struct{}), flushDelay: o.FlushDelay,
		opts: o, levels: map[int]*LogStore{}}
	s.written = msgs.EndOffset()
	s.wbase = s.written
	s.wtimer = time.AfterFunc(time.Hour, s.flushTimer)
	s.wtimer.Stop()
	if err := s.recover(); err != nil {
		msgs.Close()
		acks.Close()
		return nil, err
	}
	s.wg.Add(2)
	go s.reclaimLoop()
	go s.writerLoop()
	if err := s.openLevels(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openLevels opens the priority levels a previous run left.
func (s *LogStore) openLevels() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("cannot list queue store: %w", err)
	}
	for _, de := range des {
		n, ok := datadir.ParseQueueLevelName(de.Name())
		if !de.IsDir() || !ok {
			continue
		}
		if _, err := s.Level(n); err != nil {
			return err
		}
		s.rec.Levels = append(s.rec.Levels, n)
	}
	slices.Sort(s.rec.Levels)
	return nil
}

// Level implements Store.
func (s *LogStore) Level(n int) (Store, error) {
	if n == 0 {
		return s, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.levels[n]; ok {
		return l, nil
	}
	if s.stopped {
		return nil, fmt.Errorf("cannot open priority level %d: %w", n, log.ErrClosed)
	}
	l, err := OpenLogStore(datadir.QueueLevel(s.dir, n), s.opts)
	if err != nil {
		return nil, err
	}
	s.levels[n] = l
	return l, nil
}

// takeLevels hands the level stores over for Close or Drop.
func (s *LogStore) takeLevels() []*LogStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*LogStore
	for _, l := range s.levels {
		out = append(out, l)
	}
	clear(s.levels)
	return out
}

// recover replays the settlement log.
func (s *LogStore) recover() error {
	from, next := uint64(s.msgs.StartOffset()), uint64(s.msgs.HighWatermark())
	s.oldEnd = next
	settled := map[uint64]uint64{} // position -> persistent size (0: unknown or transient)
	counts := map[uint64]uint64{}
	maxRef, err := s.replaySettlements(settled, counts)
	if err != nil {
		return err
	}
	if maxRef > next {
		// Settlements reached the disk for messages that did not: their positions are about
		// to be reused, so they must not settle the new messages after the next restart.
		s.ackBuf = appendResetValue(s.ackBuf[:0], next)
		if _, err := s.acks.Append(appendBatch(nil, s.now().UnixMilli(), s.ackBuf)); err != nil {
			return fmt.Errorf("cannot reset queue settlements: %w", err)
		}
		if err := s.acks.Sync(); err != nil { // before any new message takes those positions
			return fmt.Errorf("cannot reset queue settlements: %w", err)
		}
	}
	s.forgetFrom(settled, counts, next)
	var nSettled, settledBytes uint64
	for q, size := range settled {
		if q >= from && !inRanges(s.ranges, q) {
			s.settled[q] = struct{}{}
			nSettled++
			settledBytes += size
		}
	}
	for q, c := range counts {
		if _, gone := settled[q]; !gone && q >= from && !inRanges(s.ranges, q) {
			s.deliv[q] = int(c)
		}
	}
	live := next - from
	for _, r := range mergeRanges(s.ranges) {
		lo, hi := max(r[0], from), min(r[1], next)
		if hi > lo {
			live -= hi - lo
		}
	}
	bytes, err := s.recoverBytes(from, next, settledBytes)
	if err != nil {
		return err
	}
	s.rec = Recovery{From: from, Next: next, Live: live - min(live, nSettled), Bytes: bytes}
	return nil
}

// recoverBytes computes Recovery.Bytes from the "persistent bytes before" values of the
// messages at from, at next-1 and at the edges of purged ranges, and sets pbytes for the
// next Append. Messages of an earlier build carry no such value: the bytes are then unknown
// and reported as 0, as that build did.
func (s *LogStore) recoverBytes(from, next, settledBytes uint64) (uint64, error) {
	if from >= next {
		return 0, nil
	}
	last, lastBefore, ok, err := s.readMessage(next - 1)
	if err != nil || !ok {
		return 0, err
	}
	end := lastBefore + persistentSize(last)
	s.pbytes = end
	before := func(q uint64) (uint64, bool, error) {
		if q >= next {
			return end, true, nil
		}
		_, b, ok, err := s.readMessage(q)
		return b, ok, err
	}
	lo, ok, err := before(from)
	if err != nil || !ok {
		return 0, err
	}
	total := end - lo
	for _, r := range mergeRanges(s.ranges) {
		a, b := max(r[0], from), min(r[1], next)
		if b <= a {
			continue
		}
		pa, ok1, err1 := before(a)
		pb, ok2, err2 := before(b)
		if err := errors.Join(err1, err2); err != nil || !ok1 || !ok2 {
			return 0, err
		}
		total -= min(total, pb-pa)
	}
	return total - min(total, settledBytes), nil
}

// readMessage reads the message at seq and its "persistent bytes before" value.
func (s *LogStore) readMessage(seq uint64) (*Message, uint64, bool, error) {
	rr, err := s.msgs.Read(int64(seq), 1)
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot read queue message %d: %w", seq, err)
	}
	b, err := rr.AppendTo(nil)
	rr.Release()
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot read queue message %d: %w", seq, err)
	}
	o, _, v, _, err := nextBatch(b)
	if err == nil && uint64(o) != seq {
		err = errBadRecord
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot read queue message %d: %w", seq, err)
	}
	m, before, ok, err := decodeMessageValue(v)
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot decode queue message %d: %w", seq, err)
	}
	return m, before, ok, nil
}

// replaySettlements reads the settlement log into settled and counts (and the store's ranges,
// delivered mark and chunks). maxRef is the largest position any surviving entry names, plus
// one.
func (s *LogStore) replaySettlements(settled, counts map[uint64]uint64) (maxRef uint64, err error) {
	off := s.acks.StartOffset()
	for off < s.acks.HighWatermark() {
		rr, err := s.acks.Read(off, recoverReadBytes)
		if err != nil {
			return 0, fmt.Errorf("cannot read queue settlements: %w", err)
		}
		b, err := rr.AppendTo(s.rbuf[:0])
		rr.Release()
		if err != nil {
			return 0, fmt.Errorf("cannot read queue settlements: %w", err)
		}
		s.rbuf = b
		if len(b) == 0 {
			break
		}
		for len(b) > 0 {
			o, _, v, rest, err := nextBatch(b)
			if err != nil {
				return 0, fmt.Errorf("cannot recover queue settlements at %d: %w", off, err)
			}
			b, off = rest, o+1
			e, err := decodeAckValue(v)
			if err != nil {
				return 0, fmt.Errorf("cannot recover queue settlements at %d: %w", o, err)
			}
			s.noteChunk(o, e)
			switch e.kind {
			case ackSettled, ackSized:
				for i, q := range e.seqs {
					settled[q] = 0
					if e.kind == ackSized {
						settled[q] = e.vals[i]
					}
					maxRef = max(maxRef, q+1)
				}
			case ackCounts:
				for i, q := range e.seqs {
					counts[q] = max(counts[q], e.vals[i])
					maxRef = max(maxRef, q+1)
				}
			case ackRange:
				s.ranges = append(s.ranges, [2]uint64{e.from, e.from + e.num})
				maxRef = max(maxRef, e.from+e.num)
			case ackDelivered:
				s.delivThr = max(s.delivThr, e.through)
			case ackReset:
				s.forgetFrom(settled, counts, e.through)
				maxRef = min(maxRef, e.through)
			}
		}
	}
	return maxRef, nil
}

// forgetFrom drops recovered settlements, ranges and delivered marks at or above n.
func (s *LogStore) forgetFrom(settled, counts map[uint64]uint64, n uint64) {
	for q := range settled {
		if q >= n {
			delete(settled, q)
		}
	}
	for q := range counts {
		if q >= n {
			delete(counts, q)
		}
	}
	kept := s.ranges[:0]
	for _, r := range s.ranges {
		if r[0] < n {
			kept = append(kept, [2]uint64{r[0], min(r[1], n)})
		}
	}
	s.ranges = kept
	s.delivThr = min(s.delivThr, n)
}

func mergeRanges(rs [][2]uint64) [][2]uint64 {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b [2]uint64) int { return int(a[0]) - int(b[0]) })
	var out [][2]uint64
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

func inRanges(rs [][2]uint64, q uint64) bool {
	for _, r := range rs {
		if q >= r[0] && q < r[1] {
			return true
		}
	}
	return false
}

// Recovered implements Store.
func (s *LogStore) Recovered() Recovery { return s.rec }

// Paged implements Store.
func (s *LogStore) Paged() bool { return true }

// noteChunk accounts a settlement entry at offset off for trimming the settlement log.
func (s *LogStore) noteChunk(off int64, e ackEntry) {
	var hi uint64
	switch e.kind {
	case ackSettled, ackSized, ackCounts:
		if len(e.seqs) > 0 {
			hi = e.seqs[len(e.seqs)-1]
		}
	case ackRange:
		hi = e.from + e.num
	case ackDelivered, ackReset:
		hi = e.through
	}
	if n := len(s.chunks); n > 0 && s.chunks[n-1].n < settleChunkEntries {
		c := &s.chunks[n-1]
		c.n++
		c.maxSeq = max(c.maxSeq, hi)
		return
	}
	s.chunks = append(s.chunks, settleChunk{first: off, maxSeq: hi, n: 1})
}

// ReadFrom implements Store.
func (s *LogStore) ReadFrom(from uint64, maxBytes int) ([]Stored, uint64, uint64, error) {
	if from >= uint64(s.msgs.HighWatermark()) {
		s.needFrom(from)
		return nil, from, 0, nil
	}
	rr, err := s.msgs.Read(int64(from), maxBytes)
	if err != nil {
		return nil, from, 0, fmt.Errorf("cannot read queue messages: %w", err)
	}
	b, err := rr.AppendTo(s.rbuf[:0])
	rr.Release()
	if err != nil {
		return nil, from, 0, fmt.Errorf("cannot read queue messages: %w", err)
	}
	s.rbuf = b
	var out []Stored
	next, passed := from, uint64(0)
	for len(b) > 0 {
		o, ts, v, rest, err := nextBatch(b)
		if err != nil {
			return out, next, passed, fmt.Errorf("cannot read queue message at %d: %w", next, err)
		}
		b = rest
		seq := uint64(o)
		if seq < from {
			continue
		}
		next = seq + 1
		if s.isSettled(seq) {
			continue
		}
		passed++
		m, _, _, err := decodeMessageValue(v)
		if err != nil { // next is the bad record: what was read before it stands
			return out, seq, passed - 1, fmt.Errorf("cannot decode queue message %d: %w", seq, err)
		}
		if !m.Persistent && seq < s.oldEnd {
			continue
		}
		m.TimestampMs = ts
		st := Stored{Seq: seq, Msg: m, Redelivered: seq < s.delivThr}
		if c, ok := s.deliv[seq]; ok {
			st.Deliveries = c
			delete(s.deliv, seq)
		}
		out = append(out, st)
	}
	return out, next, passed, nil
}

func (s *LogStore) isSettled(seq uint64) bool {
	if _, ok := s.settled[seq]; ok {
		delete(s.settled, seq)
		return true
	}
	return seq < s.oldEnd && inRanges(s.ranges, seq)
}

// NotifyReadable implements Store.
func (s *LogStore) NotifyReadable(from uint64, fn func()) {
	changed := s.msgs.Changed()
	s.needFrom(from) // on failure the queue's next Append reports the sticky error
	if uint64(s.msgs.HighWatermark()) > from {
		go fn()
		return
	}
	go func() {
		select {
		case <-changed:
			fn()
		case <-s.stop:
		}
	}()
}

// Reclaim implements Store: the reclaimer goroutine raises the logs' start offsets, so that
// the fsyncs this takes never run under the queue's lock.
func (s *LogStore) Reclaim(before uint64) {
	s.mu.Lock()
	if before > s.target {
		s.target = before
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *LogStore) reclaimLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		s.mu.Lock()
		target := s.target
		s.mu.Unlock()
		// Positions may be buffered or not yet durable: reclaim what the log can, in whole
		// segments (raising the start exactly, every 1024 acks, stalled the group commit
		// publisher confirms wait for behind its checkpoint fsync).
		target = min(target, uint64(s.msgs.HighWatermark()))
		if _, err := s.msgs.DeleteSegmentsBefore(int64(target)); err != nil {
			continue
		}
		// Settlements of messages still in the log must stay: only those below its start go.
		s.trimSettlements(uint64(s.msgs.StartOffset()))
	}
}

// trimSettlements drops the leading settlement chunks that only name messages below start.
func (s *LogStore) trimSettlements(start uint64) {
	s.mu.Lock()
	i := 0
	for i < len(s.chunks)-1 && s.chunks[i].maxSeq < start {
		i++
	}
	if i == 0 {
		s.mu.Unlock()
		return
	}
	first := s.chunks[i].first
	s.mu.Unlock()
	// Chunks are only appended meanwhile (this goroutine alone trims), so i still counts the
	// ones to drop; they stay listed until the log has let go of their records.
	if cut, err := s.acks.DeleteSegmentsBefore(first); cut && err == nil {
		s.mu.Lock()
		s.chunks = slices.Delete(s.chunks, 0, i)
		s.mu.Unlock()
	}
}

// shutdown flushes (unless the data is about to be dropped) and stops the store's goroutines.
func (s *LogStore) shutdown(flush bool) {
	if flush {
		_ = s.writeMessages()
		s.writeSettlements()
	}
	s.fmu.Lock() // no message write is in flight past this point
	s.wmu.Lock()
	s.wtimer.Stop()
	if s.werr == nil {
		s.werr = fmt.Errorf("cannot append message: %w", log.ErrClosed)
	}
	s.wq, s.wn = nil, 0
	s.wmu.Unlock()
	s.fmu.Unlock()
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
}

// Close implements Store.
func (s *LogStore) Close() error {
	var err error
	for _, l := range s.takeLevels() {
		err = errors.Join(err, l.Close())
	}
	s.shutdown(true)
	return errors.Join(err, s.msgs.Close(), s.acks.Close())
}

// Drop implements Store. The store's directory is first renamed to a tombstone
// (<dir>.deleted, see internal/datadir) and only then removed, so that a crash in between
// leaves evidence that start-up may finish the deletion, never a half-deleted store under the
// queue's name.
func (s *LogStore) Drop() error {
	levels := s.takeLevels()
	s.shutdown(false)
	err := errors.Join(s.msgs.Close(), s.acks.Close())
	for _, l := range levels {
		l.shutdown(false)
		err = errors.Join(err, l.msgs.Close(), l.acks.Close())
	}
	if errors.Is(err, log.ErrClosed) {
		err = nil
	}
	tomb, terr := datadir.Tombstone(s.dir, "")
	if terr == nil {
		terr = datadir.RemoveTombstone(tomb)
	}
	err = errors.Join(err, terr)
	if err != nil {
		return fmt.Errorf("cannot delete queue store: %w", err)
	}
	return nil
}
