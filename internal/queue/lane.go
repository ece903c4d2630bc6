package queue

// Lanes. A queue's ready messages live in lanes: a plain queue has one; a priority queue
// (x-max-priority N) has N+1, one per priority level, as in RabbitMQ, where a priority queue
// is a sub-queue per level. Each lane is a FIFO with its own Store (level n of the queue's
// store, Store.Level) and so its own sequence numbers, paging range and reclaim point:
// a deep priority queue is bounded by disk, like any other. Delivery takes the head of the
// highest lane that has a message; a requeued message goes back to its original position
// within its lane.
//
// Delivery IDs must be unique across lanes: the level is in the top bits (idLevelShift), so
// the IDs of a plain queue (level 0) are its sequence numbers.
//
// Memory: the in-memory ready window (readyWindowBytes) is shared by all lanes; a lane whose
// in-memory part is empty still reads at least a chunk from disk when it is the one to
// deliver from, so a full window never starves a higher level.

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
)

const (
	idLevelShift = 56
	idSeqMask    = 1<<idLevelShift - 1
	// minFillBytes: the least a lane reads from disk at once, even with the window full.
	minFillBytes = 64 << 10
	// tailBytesMax bounds the payload of the spilled messages a queue also keeps in memory
	// (lane.tail), all lanes together.
	tailBytesMax = 1 << 20
)

// lane is one FIFO of ready messages and its store.
type lane struct {
	level       int
	store       Store // nil until the level's first message (opened lazily)
	nextSeq     uint64
	ready       []*entry // sorted by seq from head on
	head        int
	readyBytes  int64
	diskNext    uint64 // ready messages [diskNext, diskEnd) are on disk only
	diskEnd     uint64
	diskCount   uint64 // how many of them are unsettled (upper bound after a restart)
	diskBytes   int64  // their payload bytes (recovered ones: Recovery.Bytes)
	waitingRead bool   // a NotifyReadable is pending
	delivMark   uint64 // last delivered-through mark given to the store
	// tail keeps the last messages of the disk range, [tail[0].seq, diskEnd), in memory too
	// while the queue's tails fit in tailBytesMax (see spillLocked).
	tail      []*entry
	tailBytes int64
	readErr   string // the last read-back error reported, not to repeat it on every dispatch
}

func newLane(level int, st Store) *lane {
	l := &lane{level: level}
	if st != nil {
		l.setStore(st)
	}
	return l
}

func (l *lane) setStore(st Store) {
	rec := st.Recovered()
	l.store, l.nextSeq = st, rec.Next
	l.diskNext, l.diskEnd, l.diskCount = rec.From, rec.Next, rec.Live
	l.diskBytes = int64(min(rec.Bytes, math.MaxInt64))
	l.delivMark = rec.From
}

func (l *lane) empty() bool { return l.head == len(l.ready) && l.diskNext >= l.diskEnd }

func (l *lane) readyCount() int { return len(l.ready) - l.head + int(l.diskCount) }

func (l *lane) id(seq uint64) uint64 { return uint64(l.level)<<idLevelShift | seq }

// laneLocked returns the lane of level n, opening its store if this is its first use.
func (q *Queue) laneLocked(n int) (*lane, error) {
	l := q.lanes[n]
	if l.store == nil {
		st, err := q.opts.Store.Level(n)
		if err != nil {
			return nil, fmt.Errorf("cannot open priority level %d: %w", n, err)
		}
		l.setStore(st)
	}
	return l, nil
}

// levelOf is the lane a message goes to.
func (q *Queue) levelOf(m *Message) int { return min(int(m.Priority), len(q.lanes)-1) }

// entryLane is the lane an unacknowledged entry came from.
func (q *Queue) entryLane(e *entry) *lane { return q.lanes[e.level] }

// headLaneLocked returns the highest lane with a ready message in memory, reading from disk
// as needed, or nil.
func (q *Queue) headLaneLocked() *lane {
	for i := len(q.lanes) - 1; i >= 0; i-- {
		l := q.lanes[i]
		if l.head == len(l.ready) || q.readyBytes < readyWindowBytes/2 {
			q.fillLocked(l)
		}
		if l.head < len(l.ready) {
			return l
		}
	}
	return nil
}

// fillLocked reads a lane's messages back from disk while the shared window is below half
// full, or at least one chunk if the lane has none in memory.
func (q *Queue) fillLocked(l *lane) {
	for l.diskNext < l.diskEnd && !q.deleted && (q.readyBytes < readyWindowBytes/2 || l.head == len(l.ready) || !q.paged) {
		q.trimTailLocked(l, l.diskNext)
		if len(l.tail) > 0 && l.tail[0].seq == l.diskNext {
			q.drainTailLocked(l)
			break
		}
		msgs, next, passed, err := l.store.ReadFrom(l.diskNext, int(max(readyWindowBytes-q.readyBytes, minFillBytes)))
		for _, s := range msgs {
			if q.opts.Parse != nil {
				q.opts.Parse(s.Msg)
			}
			e := &entry{seq: s.Seq, level: uint8(l.level), msg: s.Msg, redelivered: s.Redelivered, deliveries: s.Deliveries, enqMs: s.Msg.TimestampMs}
			q.appendReadyLocked(l, e)
			l.diskBytes = max(0, l.diskBytes-int64(s.Msg.Size()))
		}
		l.diskCount -= min(l.diskCount, passed)
		if err != nil {
			// Keep what was read before the bad record; the lane cannot go past it: say so
			// once, loudly, rather than let the queue look merely idle.
			l.diskNext = max(l.diskNext, next)
			if err.Error() != l.readErr {
				l.readErr = err.Error()
				q.opts.Logger.Error("cannot read queue messages back from disk: the queue delivers nothing past this position",
					"queue", q.name, "level", l.level, "position", l.diskNext, "err", err)
			}
			return
		}
		if next == l.diskNext {
			if !l.waitingRead {
				l.waitingRead = true
				l.store.NotifyReadable(l.diskNext, func() { q.readable(l) })
			}
			return
		}
		l.diskNext = next
	}
	if l.diskNext >= l.diskEnd {
		l.diskCount, l.diskBytes = 0, 0
	}
}

// spillLocked records a message published into the lane's disk range (the window was full,
// or the lane was already reading back from disk). The message stays in memory too, at the
// end of the lane's tail, while the queue's tails fit in tailBytesMax: once reading back
// reaches the tail, the rest of the range comes from memory, at once, instead of from the log
// after its fsync. Without it a lane that spilled once under a burst kept reading every later
// message back from disk for as long as publishing went on, each delivery waiting for an
// fsync and a read (milliseconds of latency, and CPU) where memory would do.
func (q *Queue) spillLocked(l *lane, e *entry) {
	size := int64(e.msg.Size())
	for len(l.tail) > 0 && q.tailBytes+size > tailBytesMax {
		q.dropTailHeadLocked(l)
	}
	if q.tailBytes+size > tailBytesMax {
		return // other lanes hold the budget; l.tail is empty, so it stays contiguous
	}
	l.tail = append(l.tail, e)
	l.tailBytes += size
	q.tailBytes += size
}

func (q *Queue) dropTailHeadLocked(l *lane) {
	size := int64(l.tail[0].msg.Size())
	l.tail[0] = nil
	l.tail = l.tail[1:]
	l.tailBytes -= size
	q.tailBytes -= size
	if len(l.tail) == 0 {
		l.tail = nil
	}
}

// trimTailLocked forgets the tail entries below seq (read back from disk already).
func (q *Queue) trimTailLocked(l *lane, seq uint64) {
	for len(l.tail) > 0 && l.tail[0].seq < seq {
		q.dropTailHeadLocked(l)
	}
}

// drainTailLocked moves the tail, which is the rest of the disk range, to the ready list.
func (q *Queue) drainTailLocked(l *lane) {
	for _, e := range l.tail {
		q.appendReadyLocked(l, e)
		l.diskBytes = max(0, l.diskBytes-int64(e.msg.Size()))
		l.diskCount -= min(l.diskCount, 1)
	}
	q.clearTailLocked(l)
	l.diskNext = l.diskEnd
}

func (q *Queue) clearTailLocked(l *lane) {
	clear(l.tail)
	q.tailBytes -= l.tailBytes
	l.tail, l.tailBytes = nil, 0
}

// readable runs once a lane's next on-disk message became readable (durable).
func (q *Queue) readable(l *lane) {
	q.mu.Lock()
	l.waitingRead = false
	q.dispatchLocked()
	q.unlock()
}

func (q *Queue) appendReadyLocked(l *lane, e *entry) {
	l.ready = append(l.ready, e)
	l.readyBytes += int64(e.msg.Size())
	q.readyBytes += int64(e.msg.Size())
}

func (q *Queue) popReadyLocked(l *lane) *entry {
	q.flow.delivered++
	e := l.ready[l.head]
	l.ready[l.head] = nil
	l.head++
	l.readyBytes -= int64(e.msg.Size())
	q.readyBytes -= int64(e.msg.Size())
	if l.head == len(l.ready) {
		l.ready, l.head = l.ready[:0], 0
	} else if l.head > 1024 && l.head*2 > len(l.ready) {
		n := copy(l.ready, l.ready[l.head:])
		clear(l.ready[n:])
		l.ready, l.head = l.ready[:n], 0
	}
	return e
}

// requeueLocked puts requeued entries back at their original positions: one at a time for a
// few, else with one merge per lane, so that a channel closing with many unacknowledged
// messages costs their number plus the ready list's length, not their product.
func (q *Queue) requeueLocked(es []*entry) {
	if len(es) <= 8 {
		for _, e := range es {
			q.insertReadyLocked(e)
		}
		return
	}
	byLane := map[*lane][]*entry{}
	for _, e := range es {
		l := q.entryLane(e)
		byLane[l] = append(byLane[l], e)
	}
	for l, back := range byLane {
		slices.SortFunc(back, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
		rest := l.ready[l.head:]
		merged := make([]*entry, 0, len(rest)+len(back))
		i, j := 0, 0
		for i < len(back) || j < len(rest) {
			if j == len(rest) || i < len(back) && back[i].seq < rest[j].seq {
				merged = append(merged, back[i])
				l.readyBytes += int64(back[i].msg.Size())
				q.readyBytes += int64(back[i].msg.Size())
				i++
			} else {
				merged = append(merged, rest[j])
				j++
			}
		}
		l.ready, l.head = merged, 0
	}
}

// insertReadyLocked puts a requeued entry back at its original position in its lane.
func (q *Queue) insertReadyLocked(e *entry) {
	l := q.entryLane(e)
	l.readyBytes += int64(e.msg.Size())
	q.readyBytes += int64(e.msg.Size())
	rest := l.ready[l.head:]
	i := sort.Search(len(rest), func(i int) bool { return e.seq < rest[i].seq })
	if i == 0 && l.head > 0 {
		l.head--
		l.ready[l.head] = e
		return
	}
	at := l.head + i
	l.ready = append(l.ready, nil)
	copy(l.ready[at+1:], l.ready[at:])
	l.ready[at] = e
}

// settleLocked records settlements, in each entry's lane's store. A settlement the store
// cannot record costs at most a redelivery after a restart; the in-memory state must move on
// regardless, so the error is not surfaced here.
func (q *Queue) settleLocked(es ...*entry) {
	if len(es) == 0 {
		return
	}
	// One Settle per level present, each entry looked at once per level present (a plain
	// queue has one level; a priority queue's deliveries may alternate between levels).
	var done [256]bool
	for i, first := range es {
		if done[first.level] {
			continue
		}
		done[first.level] = true
		seqs, sizes := q.seqBuf[:0], q.sizeBuf[:0]
		for _, e := range es[i:] {
			if e.level == first.level {
				seqs = append(seqs, e.seq)
				sizes = append(sizes, persistentSize(e.msg))
			}
		}
		_ = q.entryLane(first).store.Settle(seqs, sizes)
		q.seqBuf, q.sizeBuf = seqs[:0], sizes[:0]
	}
	q.sinceReclaim += len(es)
	if q.paged && q.sinceReclaim >= reclaimEverySettles {
		q.reclaimLocked()
	}
}

// reclaimLocked tells each lane's store the lowest sequence number still live in it.
func (q *Queue) reclaimLocked() {
	q.sinceReclaim = 0
	lows := make([]uint64, len(q.lanes))
	for i, l := range q.lanes {
		lows[i] = l.nextSeq
		if l.diskNext < l.diskEnd {
			lows[i] = l.diskNext
		}
		if l.head < len(l.ready) {
			lows[i] = min(lows[i], l.ready[l.head].seq)
		}
	}
	for _, e := range q.unacked {
		lows[e.level] = min(lows[e.level], e.seq)
	}
	for i, l := range q.lanes {
		if l.store != nil {
			l.store.Reclaim(lows[i])
		}
	}
}

// markDeliveredLocked tells a lane's store how far deliveries went, for the redelivered flag
// after a restart.
//
// The mark is written ahead (deliveredMarkAhead positions past what was delivered) so that a
// busy queue writes one mark per that many deliveries instead of one per dispatch: a message
// flagged redelivered after a crash that was in fact never delivered is allowed by AMQP
// ("may have been delivered before"); the reverse is not. The store writes marks outside the
// queue's lock, a moment later, so the next mark is asked for when deliveries come within
// half the margin of the last one: it is on file long before they reach it. Only the first
// deliveries after a start can beat their mark, by the time of one write.
func (q *Queue) markDeliveredLocked(l *lane, through uint64) {
	if through+deliveredMarkAhead/2 > l.delivMark {
		l.delivMark = through + deliveredMarkAhead
		l.store.Delivered(l.delivMark)
	}
}
