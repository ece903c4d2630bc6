package queue

import "fmt"

// Get takes the next ready message for basic.get. ok is false when the queue is empty;
// remaining is the number of ready messages left. With noAck the message is settled at once.
func (q *Queue) Get(noAck bool) (d Delivery, remaining int, ok bool, err error) {
	if r := q.opts.Replica; r != nil {
		return r.Get(q, noAck)
	}
	q.mu.Lock()
	defer q.unlock()
	if q.deleted {
		return Delivery{}, 0, false, fmt.Errorf("cannot get from queue %q: %w", q.name, ErrDeleted)
	}
	if len(q.consumers) == 0 {
		q.armExpiresLocked()
	}
	q.expireHeadLocked()
	l := q.headLaneLocked()
	if l == nil {
		return Delivery{}, 0, false, nil
	}
	e := q.popReadyLocked(l)
	if noAck {
		q.settleLocked(e)
	} else {
		q.unacked[e.id()] = e
	}
	q.markDeliveredLocked(l, e.seq+1)
	d = Delivery{Queue: q, ID: e.id(), Message: e.msg, Redelivered: e.redelivered, DeliveryCount: e.deliveries}
	q.countDeliveryLocked(e)
	return d, q.readyCountLocked(), true, nil
}

// Ack settles delivered messages. Unknown IDs (for instance after a purge or delete) are
// ignored: the front end validates delivery tags itself.
func (q *Queue) Ack(ids ...uint64) {
	if r := q.opts.Replica; r != nil {
		r.Settle(SettleAck, ids)
		return
	}
	q.mu.Lock()
	defer q.unlock()
	es := q.entBuf[:0]
	for _, id := range ids {
		if e, ok := q.unacked[id]; ok {
			delete(q.unacked, id)
			es = append(es, e)
		}
	}
	q.stats.Acked += int64(len(es))
	q.settleLocked(es...)
	clear(es)
	q.entBuf = es[:0]
	if len(q.unacked) == 0 && q.paged && q.emptyLocked() {
		q.reclaimLocked() // an empty queue frees its disk at once
	}
	q.dispatchLocked()
}

// Requeue returns delivered messages to the ready list at their original positions, flagged
// redelivered, and dispatches them.
func (q *Queue) Requeue(ids ...uint64) {
	if r := q.opts.Replica; r != nil {
		r.Settle(SettleRequeue, ids)
		return
	}
	q.mu.Lock()
	defer q.unlock()
	back := make([]*entry, 0, len(ids))
	for _, id := range ids {
		if e, ok := q.unacked[id]; ok {
			delete(q.unacked, id)
			e.redelivered = true
			e.deliveries++
			if q.lim.deliveryLimit >= 0 && int64(e.deliveries) > q.lim.deliveryLimit {
				q.deadLetterLocked(e, ReasonDeliveryLimit)
				continue
			}
			// Counts are recorded only where they decide something (x-delivery-limit), which
			// also bounds the entries per message: an entry naming the message at the head
			// cannot be trimmed, and a nack loop without a limit would write one per flush.
			if e.msg.Persistent && q.lim.deliveryLimit >= 0 {
				q.entryLane(e).store.Requeued(e.seq, e.deliveries)
			}
			back = append(back, e)
		}
	}
	q.requeueLocked(back)
	q.overflowLocked() // as RabbitMQ, drop-head applies the length limits to requeued messages too
	q.dispatchLocked()
}

// Drop discards delivered messages (reject or nack without requeue), dead-lettering them
// (reason rejected) if the queue has a dead-letter exchange.
func (q *Queue) Drop(ids ...uint64) {
	if r := q.opts.Replica; r != nil {
		r.Settle(SettleDrop, ids)
		return
	}
	q.mu.Lock()
	defer q.unlock()
	for _, id := range ids {
		if e, ok := q.unacked[id]; ok {
			delete(q.unacked, id)
			q.deadLetterLocked(e, ReasonRejected)
		}
	}
	q.dispatchLocked()
}

// Purge removes every ready message and returns how many it removed. Unacknowledged
// messages are not affected, as in RabbitMQ. A replicated queue's purge that fails counts
// 0 (PurgeErr tells why).
func (q *Queue) Purge() int {
	if q.opts.Replica != nil {
		n, _ := q.PurgeErr()
		return n
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.readyCountLocked()
	for _, l := range q.lanes {
		q.settleLocked(l.ready[l.head:]...)
		if l.diskNext < l.diskEnd {
			_ = l.store.SettleRange(l.diskNext, l.diskEnd-l.diskNext)
			l.diskNext, l.diskCount, l.diskBytes = l.diskEnd, 0, 0
		}
		q.clearTailLocked(l)
		clear(l.ready)
		l.ready, l.head, l.readyBytes = l.ready[:0], 0, 0
	}
	q.readyBytes = 0
	if q.paged {
		q.reclaimLocked()
	}
	return n
}

// PurgeErr is Purge, with the error of a replicated queue's purge (its group had no
// leader in time); a local purge does not fail.
func (q *Queue) PurgeErr() (int, error) {
	if r := q.opts.Replica; r != nil {
		return r.Purge()
	}
	return q.Purge(), nil
}

// Delete deletes the queue, with RabbitMQ's if-unused (no consumers) and if-empty (no ready
// messages) conditions. It returns the number of ready messages dropped. Consumers are told
// through Consumer.Cancelled after the lock is released.
func (q *Queue) Delete(ifUnused, ifEmpty bool) (int, error) {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return 0, fmt.Errorf("cannot delete queue %q: %w", q.name, ErrDeleted)
	}
	if ifUnused && len(q.consumers) > 0 {
		q.mu.Unlock()
		return 0, fmt.Errorf("cannot delete queue %q: %w", q.name, ErrInUse)
	}
	n := q.readyCountLocked()
	if ifEmpty && n > 0 {
		q.mu.Unlock()
		return 0, fmt.Errorf("cannot delete queue %q: %w", q.name, ErrNotEmpty)
	}
	q.deleted = true
	q.stopTimersLocked()
	consumers := q.consumers
	q.consumers = nil
	for _, l := range q.lanes {
		l.ready, l.head = nil, 0
	}
	q.readyBytes, q.unacked = 0, map[uint64]*entry{}
	store := q.opts.Store
	q.mu.Unlock()
	for _, c := range consumers {
		c.Consumer.Cancelled(q, c.Tag)
	}
	if err := store.Drop(); err != nil {
		return n, fmt.Errorf("cannot delete queue %q: %w", q.name, err)
	}
	return n, nil
}

// Close releases the queue's store at shutdown, keeping its data. Consumers are not told.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return nil
	}
	q.deleted = true
	q.stopTimersLocked()
	store := q.opts.Store
	q.mu.Unlock()
	return store.Close()
}

// Deleted reports whether the queue was deleted.
func (q *Queue) Deleted() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}

// emptyLocked reports whether no lane has a ready message.
func (q *Queue) emptyLocked() bool {
	for _, l := range q.lanes {
		if !l.empty() {
			return false
		}
	}
	return true
}

func (q *Queue) stopTimersLocked() {
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.expTimer != nil {
		q.expTimer.Stop()
	}
}
