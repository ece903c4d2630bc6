package queue

import "context"

// SettleMode is how delivered messages are settled: Ack, Requeue or Drop.
type SettleMode int

// Settle modes.
const (
	SettleAck SettleMode = iota
	SettleRequeue
	SettleDrop
)

// Replica is a replicated queue behind a Queue (Options.Replica). The Queue keeps its local
// consumers registered (exclusive use, auto-delete) and forwards to the replica: publishes,
// new and cancelled consumers, and settlements by the delivery ids the replica handed out.
// The replica delivers through the consumers' TryDeliver, with Delivery.Queue set to the
// Queue. None of these may block for long: they run on the front end's goroutines.
type Replica interface {
	Publish(m *Message) (Waiter, error)
	Consume(q *Queue, spec ConsumerSpec)
	Cancel(tag string, owner Consumer)
	Settle(mode SettleMode, ids []uint64)
	Counts() (ready, unacked, consumers int)
	// Get takes one message for basic.get (a delivery settled by its ID like a consumer's).
	Get(q *Queue, noAck bool) (d Delivery, remaining int, ok bool, err error)
	// Purge removes the ready messages; n is how many.
	Purge() (n int, err error)
	// Kick retries deliveries a consumer refused (it had no room then).
	Kick()
}

// waitFunc adapts a function to durable, for NewReplicaWaiter.
type waitFunc func(ctx context.Context) error

func (f waitFunc) WaitDurable(ctx context.Context, _ int64) error { return f(ctx) }

// NewReplicaWaiter is a Waiter that waits with wait: a replica's commit (a publisher
// confirm then means the message is committed on a majority; an error nacks it).
func NewReplicaWaiter(wait func(ctx context.Context) error) Waiter {
	return Waiter{l: waitFunc(wait)}
}
