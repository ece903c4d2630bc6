package queue

// Store records a queue's messages outside memory. The queue calls it under its lock, in
// sequence order for Append; seq is the message's position, stable across requeues, which is
// what a log-structured store needs to reclaim a segment once all its messages are settled.
// Durable queues (issue 6) put a Store on the log engine here; transient queues use
// MemoryStore.
//
// How durability slots in: a log-backed Append encodes the message into a record batch and
// calls the log's AppendNoWait under the queue lock (cheap, keeps sequence order); the front end
// then waits for durability (WaitDurable, outside every lock, so that concurrent publishers
// share one fsync) before it sends the publisher confirm, which means extending Append's
// result with the log offset to wait for. Settle appends an acknowledgement record; a segment
// whose messages are all settled can be deleted; recovery replays unsettled records into the
// ready list in sequence order, so requeue-at-original-position survives a restart.
type Store interface {
	// Append records a newly enqueued message.
	Append(seq uint64, m *Message) error
	// Settle records that a message left the queue (acked, dropped or purged).
	Settle(seq uint64) error
	// Close releases the store when the queue is deleted.
	Close() error
}

// MemoryStore keeps nothing: messages live only in the queue's memory.
type MemoryStore struct{}

func (MemoryStore) Append(uint64, *Message) error { return nil }
func (MemoryStore) Settle(uint64) error           { return nil }
func (MemoryStore) Close() error                  { return nil }
