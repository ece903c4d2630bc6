package amqp

// Publisher pacing (see internal/queue/flow.go for when a queue asks for it). A publish that
// lands in a queue asking to be paced marks the queue on the connection; once the reader has
// handled its whole read buffer (and sent the confirms it owes), it waits for each marked
// queue to drain, at most paceMaxWait each, before it reads on: TCP then holds the publisher,
// as RabbitMQ's flow control does. A connection that also consumes from the queue is never
// paced by it, so that its own acks are never held up behind the wait.

import (
	"time"

	"github.com/yardmq/yard/internal/queue"
)

const (
	// DefaultPaceBacklogBytes is a quarter of the in-memory window of a durable queue (4 MiB):
	// a paced queue's backlog stays in memory, and is at most about 25 ms of deliveries at
	// 40,000 msgs/s of 1 KiB. Measured flat out (PerfTest 1/1, persistent), 1 MiB delivered as
	// much as 2 MiB with half the consumer latency (p50 22 ms against 42 ms); 512 KiB cut it
	// to 13 ms but delivered about 3% less.
	DefaultPaceBacklogBytes = 1 << 20
	// paceMaxWait bounds one wait, so that stalled consumers cannot stop a publisher for good.
	paceMaxWait = 100 * time.Millisecond
)

// notePace marks q for a wait after this read buffer if it asks publishers to slow down.
func (c *conn) notePace(q *queue.Queue) {
	if !q.Pace(c.srv.cfg.PaceBacklogBytes) || c.consumes(q) {
		return
	}
	for _, p := range c.paced {
		if p == q {
			return
		}
	}
	c.paced = append(c.paced, q)
}

// waitPaced waits for the marked queues to drain (bounded).
func (c *conn) waitPaced() {
	for _, q := range c.paced {
		q.WaitDrained(c.srv.cfg.PaceBacklogBytes, paceMaxWait)
	}
	clear(c.paced)
	c.paced = c.paced[:0]
}

func (c *conn) consumes(q *queue.Queue) bool {
	c.consumedMu.Lock()
	defer c.consumedMu.Unlock()
	return c.consumed[q] > 0
}
