package queue

// Store records a queue's messages outside memory. The queue calls it under its lock, in
// sequence order for Append; seq is the message's position, stable across requeues, which is
// what a log-structured store needs to reclaim a segment once all its messages are settled.
// Durable queues (issue 6) put a Store on the log engine here; transient queues use
// MemoryStore.
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
