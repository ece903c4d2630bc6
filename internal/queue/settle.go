package queue

import "fmt"

// Get takes the next ready message for basic.get. ok is false when the queue is empty;
// remaining is the number of ready messages left. With noAck the message is settled at once.
func (q *Queue) Get(noAck bool) (d Delivery, remaining int, ok bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return Delivery{}, 0, false, fmt.Errorf("cannot get from queue %q: %w", q.name, ErrDeleted)
	}
	if q.head == len(q.ready) {
		return Delivery{}, 0, false, nil
	}
	e := q.popReadyLocked()
	if noAck {
		q.settleLocked(e)
	} else {
		q.unacked[e.seq] = e
	}
	d = Delivery{Queue: q, ID: e.seq, Message: e.msg, Redelivered: e.redelivered}
	return d, len(q.ready) - q.head, true, nil
}

// Ack settles delivered messages. Unknown IDs (for instance after a purge or delete) are
// ignored: the front end validates delivery tags itself.
func (q *Queue) Ack(ids ...uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if e, ok := q.unacked[id]; ok {
			delete(q.unacked, id)
			q.settleLocked(e)
		}
	}
	q.dispatchLocked()
}

// Requeue returns delivered messages to the ready list at their original positions, flagged
// redelivered, and dispatches them.
func (q *Queue) Requeue(ids ...uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if e, ok := q.unacked[id]; ok {
			delete(q.unacked, id)
			e.redelivered = true
			q.insertReadyLocked(e)
		}
	}
	q.dispatchLocked()
}

// Drop discards delivered messages (reject or nack without requeue). Dead-lettering will
// hook in here.
func (q *Queue) Drop(ids ...uint64) { q.Ack(ids...) }

// Purge removes every ready message and returns how many it removed. Unacknowledged
// messages are not affected, as in RabbitMQ.
func (q *Queue) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.ready) - q.head
	for _, e := range q.ready[q.head:] {
		q.settleLocked(e)
	}
	clear(q.ready)
	q.ready, q.head, q.readyBytes = q.ready[:0], 0, 0
	return n
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
	n := len(q.ready) - q.head
	if ifEmpty && n > 0 {
		q.mu.Unlock()
		return 0, fmt.Errorf("cannot delete queue %q: %w", q.name, ErrNotEmpty)
	}
	q.deleted = true
	consumers := q.consumers
	q.consumers = nil
	q.ready, q.head, q.unacked = nil, 0, map[uint64]*entry{}
	store := q.opts.Store
	q.mu.Unlock()
	for _, c := range consumers {
		c.Consumer.Cancelled(q, c.Tag)
	}
	_ = store.Close()
	return n, nil
}

// Deleted reports whether the queue was deleted.
func (q *Queue) Deleted() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}
