package queue

// LogStore's write path: the message buffer and the settlement buffer, and the writes that
// empty them.
//
// No write system call runs under the queue's lock. Append, Settle, Requeued, SettleRange and
// Delivered run under it, so they only encode into memory; the writes happen in Waiter.Wait
// (the publisher confirm path, on its own goroutine), in the store's writer goroutine (kicked
// when a buffer is full or a reader needs its data) and in the flush timers. A buffered write
// to a file can block for milliseconds while the kernel writes back the page it lands on (an
// fsync of the same file is under way, as it nearly always is under group commit); under the
// queue's lock that stalled every ack and delivery of the queue for as long, which showed as
// consumer latency spikes of hundreds of milliseconds at a fraction of the queue's capacity.
//
// Messages: wq holds encoded batches for positions [wbase, wbase+wn); writeMessages takes the
// buffer and appends it with one AppendNoWait, and written is the end of what the log has.
// Writers are serialised by fmu, in order, so a Wait that finds its message not yet written
// and writes "everything buffered now" returns only after every earlier write finished too.
// A full buffer is left to the writer goroutine unless it reaches writeBufferMax, where the
// publisher writes it itself: that is the back-pressure when the disk cannot keep up.
//
// A failed write (a full disk) loses nothing and fails nothing for good: the log undid it, so
// the batches go back in front of the buffer, at the positions the queue gave them, and the
// write is tried again (writeRetryDelay later, or at the next publish, wait or read). Until it
// succeeds their confirms are refused (Waiter.Wait fails: a nack, after which the message may
// still be delivered, which a nack allows) and, once the buffer holds writeBufferMax, so are
// new publishes (Append fails first, with nothing buffered). Only a failed fsync (log.ErrFailed)
// or a closed log is sticky (werr): the kernel may have dropped the data, and the queue
// refuses every publish until it is reopened.
//
// Settlements: acks with sizes, delivery counts, purged ranges and the delivered-through mark
// are gathered under pmu and written as settlement entries by writeSettlements, serialised
// by amu. A crash loses the ones not yet written: acks and purges then come back as
// redeliveries (at-least-once), counts are lower; the delivered-through mark is requested
// well before deliveries reach the previous one (markDeliveredLocked), so it is written
// before any message it covers can have left.

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// writeBufferMax: a message buffer this large is written by the publisher itself.
const writeBufferMax = 4 << 20

// writeRetryDelay: how soon a failed message write is tried again when nothing else asks.
const writeRetryDelay = time.Second

// Append implements Store: the message goes into the write buffer.
func (s *LogStore) Append(seq uint64, m *Message) (Waiter, error) {
	s.wmu.Lock()
	if s.werr != nil {
		err := s.werr
		s.wmu.Unlock()
		return Waiter{}, err
	}
	if len(s.wq)+s.wflight >= writeBufferMax && s.wfail != nil {
		// The disk refused the buffer: write it before taking more (back-pressure), and
		// refuse this message, buffering nothing, if it still cannot be.
		s.wmu.Unlock()
		if err := s.writeMessages(); err != nil {
			return Waiter{}, err
		}
		s.wmu.Lock()
	}
	if end := uint64(s.wbase + s.wn); seq != end {
		panic(fmt.Sprintf("BUG: queue appends seq %d but the message log (with its write buffer) ends at %d", seq, end))
	}
	if s.wq == nil {
		// Sized as the last buffer written: growing from nothing by doubling cost a copy and
		// an allocation per doubling, per buffer (5% of the broker's CPU at 40,000 msgs/s).
		s.wq = make([]byte, 0, s.wqHint)
	}
	// The message is encoded straight into the buffer (s.pbytes: under the queue's lock).
	vlen := messageValueLen(m, s.pbytes)
	s.wq = growWriteBuffer(s.wq, vlen+batchOverheadMax)
	wq, start := beginBatch(s.wq, s.now().UnixMilli(), vlen)
	s.wq = endBatch(appendMessageValue(wq, m, s.pbytes), start)
	s.wn++
	s.pbytes += persistentSize(m)
	size := len(s.wq)
	unwritten := size + s.wflight // what waits for the disk, a write under way included
	if size < writeBufferBytes && !s.wArmed {
		s.wArmed = true
		s.wtimer.Reset(s.flushDelay)
	}
	s.wmu.Unlock()
	w := Waiter{l: s.msgs, off: int64(seq), f: s}
	switch {
	case unwritten >= writeBufferMax:
		// The message is buffered, at its position: a failed write is the next Append's to
		// report (above) and this message's Wait's.
		_ = s.writeMessages()
	case size >= writeBufferBytes:
		s.kickWriter()
	}
	return w, nil
}

// batchOverheadMax bounds what a message's batch adds to its value: the batch header and the
// record's framing (length, attributes, deltas, key and header counts as varints).
const batchOverheadMax = 128

// growWriteBuffer makes room for need more bytes in b, at least doubling its capacity when it
// must grow. append alone grows a large slice by a quarter at a time: a buffer that filled
// from 64 KiB to 1 MiB while a write was under way was copied a dozen times on the way, which
// with the zeroing of each new allocation took 5-9% of the broker's CPU flat out.
func growWriteBuffer(b []byte, need int) []byte {
	if cap(b)-len(b) >= need {
		return b
	}
	return slices.Grow(b, max(need, cap(b)))
}

// writeMessages appends the buffered messages to the message log. It must not run under the
// queue's lock (see the file comment), except as back-pressure from Append.
func (s *LogStore) writeMessages() error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.wmu.Lock()
	if s.werr != nil || s.wn == 0 {
		err := s.werr
		s.wmu.Unlock()
		return err
	}
	buf, n, base := s.wq, s.wn, s.wbase
	s.wq, s.wn, s.wbase = s.wspare[:0], 0, base+n
	s.wspare = nil
	s.wqHint = min(len(buf), writeBufferMax)
	s.wflight = len(buf)
	s.wmu.Unlock()
	res, err := s.msgs.AppendNoWait(buf)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wflight = 0
	if err != nil {
		err = fmt.Errorf("cannot append messages: %w", err)
		if errors.Is(err, log.ErrFailed) || errors.Is(err, log.ErrClosed) {
			s.werr = err
			return err
		}
		// Undone by the log: the batches go back in front of what was buffered since, at
		// the same positions, and are tried again.
		s.wq, s.wspare = append(buf, s.wq...), s.wq[:0]
		s.wn += n
		s.wbase = base
		s.wfail = err
		if !s.wArmed {
			s.wArmed = true
			s.wtimer.Reset(writeRetryDelay)
		}
		return err
	}
	s.wfail = nil
	if res.BaseOffset != base || int64(res.Batches) != n {
		panic(fmt.Sprintf("BUG: queue wrote %d messages at %d but the log put %d at %d", n, base, res.Batches, res.BaseOffset))
	}
	s.written = base + n
	if cap(buf) <= 4*writeBufferBytes { // a huge message passed through: do not keep its buffer
		s.wspare = buf[:0]
	}
	return nil
}

// flushThrough writes the buffered messages if offset off is not written yet (Waiter.Wait).
func (s *LogStore) flushThrough(off int64) error {
	s.wmu.Lock()
	done := off < s.written
	s.wmu.Unlock()
	if done {
		return nil
	}
	if err := s.writeMessages(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if off >= s.written {
		return fmt.Errorf("cannot wait for message %d: %w", off, log.ErrOffsetOutOfRange)
	}
	return nil
}

// durableThrough implements flusher: the message at off is written and, under the log's sync
// policy, durable (the high watermark is the durable end under SyncAlways).
func (s *LogStore) durableThrough(off int64) bool {
	s.wmu.Lock()
	written := off < s.written
	s.wmu.Unlock()
	return written && off < s.msgs.HighWatermark()
}

// needFrom has the writer write the buffer if position from is not written yet (a reader
// needs it; it runs under the queue's lock, so it does not write itself).
func (s *LogStore) needFrom(from uint64) {
	s.wmu.Lock()
	pending := int64(from) >= s.written
	s.wmu.Unlock()
	if pending {
		s.kickWriter()
	}
}

func (s *LogStore) flushTimer() {
	s.wmu.Lock()
	s.wArmed = false
	s.wmu.Unlock()
	_ = s.writeMessages() // sticky: the next Append or Wait reports it
}

func (s *LogStore) kickWriter() {
	select {
	case s.wkick <- struct{}{}:
	default:
	}
}

// writerLoop is the store's writer goroutine: it writes full buffers and what readers need.
func (s *LogStore) writerLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wkick:
		}
		_ = s.writeMessages()
		s.writeSettlements()
	}
}

// Settle implements Store. Settlements are not waited for: losing one to a crash means a
// redelivery, which at-least-once delivery allows.
func (s *LogStore) Settle(seqs []uint64, sizes []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	if len(sizes) != len(seqs) {
		panic(fmt.Sprintf("BUG: %d settled messages with %d sizes", len(seqs), len(sizes)))
	}
	s.pmu.Lock()
	for i, q := range seqs {
		s.pending = append(s.pending, [2]uint64{q, sizes[i]})
	}
	s.bufferedLocked()
	s.pmu.Unlock()
	return nil
}

// Requeued implements Store: recorded with the next settlement entry write.
func (s *LogStore) Requeued(seq uint64, count int) {
	s.pmu.Lock()
	s.counts[seq] = uint64(count)
	s.bufferedLocked() // a lost count costs a lower x-delivery-count after a restart
	s.pmu.Unlock()
}

// SettleRange implements Store.
func (s *LogStore) SettleRange(from, num uint64) error {
	if num == 0 {
		return nil
	}
	s.pmu.Lock()
	s.purged = append(s.purged, [2]uint64{from, num})
	s.bufferedLocked()
	s.pmu.Unlock()
	return nil
}

// Delivered implements Store. It is written at once (by the writer goroutine): the queue asks
// for the next mark well before its deliveries reach the last one.
func (s *LogStore) Delivered(through uint64) {
	s.pmu.Lock()
	s.delivered = max(s.delivered, through)
	s.pmu.Unlock()
	s.kickWriter()
}

// bufferedLocked has the buffered settlements written once there are enough, or arms the
// timer that writes them; pmu is held.
func (s *LogStore) bufferedLocked() {
	if len(s.pending)+len(s.counts)+len(s.purged) >= settleBatchMax {
		s.kickWriter()
		return
	}
	if !s.flushArm {
		s.flushArm = true
		time.AfterFunc(settleFlushDelay, s.flushPending)
	}
}

func (s *LogStore) flushPending() {
	s.pmu.Lock()
	s.flushArm = false
	s.pmu.Unlock()
	s.writeSettlements()
}

// writeSettlements writes the buffered settlements: one entry for the acks, one for the
// delivery counts, one per purged range and one for the delivered-through mark. Errors are
// dropped: a settlement the log could not take costs at most a redelivery after a restart.
func (s *LogStore) writeSettlements() {
	s.amu.Lock()
	defer s.amu.Unlock()
	s.pmu.Lock()
	acks, counts, purged, delivered := s.pending, s.counts, s.purged, s.delivered
	if len(acks) == 0 && len(counts) == 0 && len(purged) == 0 && delivered == 0 {
		s.pmu.Unlock()
		return
	}
	s.pending, s.purged, s.delivered = s.pendingSpare[:0], nil, 0
	s.pendingSpare = nil
	if len(counts) > 0 {
		s.counts = map[uint64]uint64{}
	} else {
		counts = nil // still s.counts: not to be read outside pmu
	}
	s.pmu.Unlock()
	if len(acks) > 0 {
		slices.SortFunc(acks, bySeq)
		s.appendPairs(ackSized, slices.CompactFunc(acks, func(a, b [2]uint64) bool { return a[0] == b[0] }))
		s.pmu.Lock()
		s.pendingSpare = acks[:0]
		s.pmu.Unlock()
	}
	if len(counts) > 0 {
		pairs := make([][2]uint64, 0, len(counts))
		for q, c := range counts {
			pairs = append(pairs, [2]uint64{q, c})
		}
		slices.SortFunc(pairs, bySeq)
		s.appendPairs(ackCounts, pairs)
	}
	for _, r := range purged {
		s.ackBuf = appendRangeValue(s.ackBuf[:0], r[0], r[1])
		_ = s.appendAck(ackEntry{kind: ackRange, from: r[0], num: r[1]})
	}
	if delivered > 0 {
		s.ackBuf = appendDeliveredValue(s.ackBuf[:0], delivered)
		_ = s.appendAck(ackEntry{kind: ackDelivered, through: delivered})
	}
}

// bySeq orders (sequence, value) pairs by sequence.
func bySeq(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) }

// appendPairs writes pairs, sorted by sequence, as one settlement entry of kind; amu is held.
// Errors are dropped, as in writeSettlements.
func (s *LogStore) appendPairs(kind byte, pairs [][2]uint64) {
	s.ackBuf = appendPairsValue(s.ackBuf[:0], kind, pairs)
	_ = s.appendAck(ackEntry{kind: kind, seqs: []uint64{pairs[len(pairs)-1][0]}})
}

// appendAck writes the settlement entry in ackBuf; amu is held.
func (s *LogStore) appendAck(e ackEntry) error {
	b := appendBatch(s.ackWBuf[:0], s.now().UnixMilli(), s.ackBuf)
	s.ackWBuf = b
	res, err := s.acks.AppendNoWait(b)
	if err != nil {
		return fmt.Errorf("cannot record settlement: %w", err)
	}
	s.mu.Lock()
	s.noteChunk(res.BaseOffset, e)
	s.mu.Unlock()
	return nil
}
