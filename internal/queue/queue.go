// Package queue is yard's queue engine: the messages of one queue, ready or delivered and
// unacknowledged, and its consumers.
//
// Model. A queue holds entries in publish order; each has a sequence number (its position).
// Ready entries are delivered to consumers in that order; a delivered entry moves to the
// unacked map until the consumer settles it: ack removes it, requeue puts it back among the
// ready entries at its ORIGINAL position (by sequence number) flagged redelivered, so that a
// route a crashed driver held is the next one handed out. Consumers are served round-robin
// within the highest consumer priority that has room; a consumer says whether it has room
// (prefetch, flow, socket backlog) in TryDeliver, so the queue never overruns a client.
//
// Concurrency. One mutex per queue guards all of its state. Consumer.TryDeliver is called
// with that lock held, so the lock order is queue, then whatever the consumer locks (its
// channel); a front end must never call into a queue while holding a lock TryDeliver takes.
// Cancellation notices (Consumer.Cancelled) are sent after the lock is released.
//
// Storage. Every enqueue and settlement also goes through a Store: MemoryStore keeps nothing
// (transient queues), LogStore writes to the log engine (durable queues). With a paged store
// (LogStore) only a window of ready messages (readyWindowBytes) is kept in memory: once the
// window is full, new messages exist only on disk, as the range [diskNext, diskEnd) of
// sequence numbers, and are read back in order as the window drains. Every in-memory ready
// entry then has a sequence number below diskNext, so requeued entries still go back to their
// original position and the order of delivery is the order of publishing. All of this is per
// lane: a priority queue is one lane per priority level, each with its own store and
// sequence numbers, delivered highest level first (lane.go); a plain queue is one lane.
//
// Restarts: a durable queue recovers its messages (Store.Recovered), their payload bytes for
// x-max-length-bytes (Recovery.Bytes) and, on queues with x-delivery-limit, their delivery
// counts (Stored.Deliveries).
package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

const (
	// readyWindowBytes bounds the ready message payload a paged queue keeps in memory.
	readyWindowBytes = 4 << 20
	// reclaimEverySettles: how many settlements between reclaim checks.
	reclaimEverySettles = 1024
	// deliveredMarkAhead: see markDeliveredLocked.
	deliveredMarkAhead = 1024
)

// Errors, each errors.Is-able.
var (
	ErrDeleted         = errors.New("queue deleted")
	ErrExclusiveUse    = errors.New("queue in exclusive use")
	ErrInUse           = errors.New("queue in use")
	ErrNotEmpty        = errors.New("queue not empty")
	ErrDuplicateTag    = errors.New("consumer tag already in use")
	ErrUnknownConsumer = errors.New("unknown consumer")
)

// Message is one published message. It is immutable once published and may be shared by every
// queue it was routed to.
type Message struct {
	Exchange   string
	RoutingKey string
	Properties []byte // encoded content-header property list, forwarded as received
	Body       []byte
	Persistent bool
	// Set by the front end from the properties (and by Options.Parse for messages read back
	// from disk): priority, and the per-message TTL (expiration) if HasExpiration.
	Priority      uint8
	HasExpiration bool
	ExpirationMs  int64
	TimestampMs   int64 // for messages read back from a store: when the message entered the queue
}

// Size is the message's payload size in bytes, for memory accounting.
func (m *Message) Size() int { return len(m.Properties) + len(m.Body) }

// Delivery is a message handed to a consumer or to basic.get.
type Delivery struct {
	Queue       *Queue
	ID          uint64 // the entry's sequence number: pass it back to Ack/Requeue/Drop
	Message     *Message
	Redelivered bool
	ConsumerTag string // "" for basic.get
	// DeliveryCount is how many times the message was delivered and returned before: the
	// front end writes it as the x-delivery-count header when it is not zero.
	DeliveryCount int
}

// Consumer is the front end's side of a subscription.
type Consumer interface {
	// TryDeliver hands over a delivery if the consumer has room and reports whether it took
	// it. It runs with the queue's lock held: it must not block or call into the queue.
	TryDeliver(d Delivery) bool
	// Cancelled tells the consumer the queue was deleted under it. Called without locks.
	Cancelled(q *Queue, tag string)
}

// ConsumerSpec describes a subscription.
type ConsumerSpec struct {
	Tag       string
	NoAck     bool
	Exclusive bool
	Priority  int
	Consumer  Consumer
	// Prefetch is the consumer's prefetch count (0: unlimited), for a Replica that decides
	// deliveries itself.
	Prefetch int
}

// Options configure a queue.
type Options struct {
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	Owner      any   // exclusive queues: the connection that declared it
	Store      Store // nil: MemoryStore
	// DeadLetter receives messages dead-lettered (x-dead-letter-exchange), after the queue's
	// lock is released; nil drops them.
	DeadLetter func([]DeadLetter)
	// Parse fills a message's Priority and expiration from its properties; used for messages
	// read back from disk. nil leaves them unset.
	Parse func(*Message)
	// OnExpire is called when the queue has been unused for x-expires; the front end deletes it.
	OnExpire func()
	Now      func() time.Time // nil: time.Now
	// Logger reports what the queue cannot tell a client, such as a message log it cannot
	// read back; nil discards.
	Logger *slog.Logger
	// Replica, when set, makes this queue the local face of a replicated queue (a quorum
	// queue on a cluster, internal/quorum): the replica holds the messages and decides the
	// deliveries; this queue only registers the local consumers and forwards publishes,
	// consumers and settlements to it (replica.go).
	Replica Replica
}

type entry struct {
	seq         uint64
	msg         *Message
	deliveries  int   // times delivered and returned (x-delivery-count)
	level       uint8 // the lane (priority level) it belongs to
	enqMs       int64 // when it entered the queue (Unix ms), for TTLs
	redelivered bool
}

func (e *entry) id() uint64 { return uint64(e.level)<<idLevelShift | e.seq }

type consumer struct {
	ConsumerSpec
	order uint64 // registration order, for single active consumer
}

// Queue is one queue. All methods are safe for concurrent use.
type Queue struct {
	name string
	opts Options

	mu          sync.Mutex        // guards everything below
	stats       Stats             // counters for the admin plane (stats.go)
	lanes       []*lane           // by priority level (lane.go); one for a plain queue
	readyBytes  int64             // in-memory ready payload, all lanes
	tailBytes   int64             // payload of the lanes' tails (lane.tail)
	flow        flowState         // publisher pacing (flow.go)
	unacked     map[uint64]*entry // by delivery ID
	consumers   []*consumer       // by priority, highest first; rotated for round-robin
	hadConsumer bool
	exclusive   bool // a consumer holds exclusive access
	deleted     bool

	paged        bool // the store can give messages back: bodies may leave memory
	sinceReclaim int
	seqBuf       []uint64
	sizeBuf      []uint64
	entBuf       []*entry

	lim       limits // parsed arguments (features.go)
	now       func() time.Time
	dl        []DeadLetter // collected under mu, handed over by unlock
	perMsgTTL bool         // some message had an expiration
	timer     *time.Timer  // head expiry
	timerAt   int64
	expTimer  *time.Timer // x-expires
	lastUsed  time.Time
	consOrder uint64
}

// New creates an empty queue.
func New(name string, opts Options) *Queue {
	if opts.Store == nil {
		opts.Store = MemoryStore{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rec := opts.Store.Recovered()
	lim := parseLimits(opts.Args)
	q := &Queue{name: name, opts: opts, unacked: map[uint64]*entry{}, lim: lim, now: opts.Now, paged: opts.Store.Paged()}
	levels := lim.maxPriority + 1
	for _, n := range rec.Levels {
		levels = max(levels, n+1) // cannot happen (arguments are fixed at declare); keep the data
	}
	q.lanes = make([]*lane, levels)
	q.lanes[0] = newLane(0, opts.Store)
	for n := 1; n < levels; n++ {
		q.lanes[n] = newLane(n, nil)
	}
	for _, n := range rec.Levels {
		if n > 0 {
			if _, err := q.laneLocked(n); err != nil {
				panic(fmt.Sprintf("BUG: the store recovered level %d and cannot give it: %v", n, err))
			}
		}
	}
	for _, l := range q.lanes {
		q.perMsgTTL = q.perMsgTTL || l.diskCount > 0 // recovered messages may carry expirations
	}
	q.mu.Lock()
	q.armExpiresLocked()
	q.mu.Unlock()
	return q
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Options returns the options the queue was declared with.
func (q *Queue) Options() Options { return q.opts }

// Publish appends a message and dispatches what it can. The Waiter says when the message is
// durable (a publisher confirm for a persistent message waits for it, outside every lock).
func (q *Queue) Publish(m *Message) (Waiter, error) {
	if r := q.opts.Replica; r != nil {
		return r.Publish(m)
	}
	q.mu.Lock()
	defer q.unlock()
	if q.deleted {
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, ErrDeleted)
	}
	if q.lim.overflow != OverflowDropHead && q.overLimitLocked(1, int64(m.Size())) {
		if q.lim.overflow == OverflowRejectPublishDLX && q.lim.deadLetter && q.opts.DeadLetter != nil {
			q.dl = append(q.dl, DeadLetter{Msg: m, Reason: ReasonMaxLen, Queue: q.name})
			q.stats.DeadLettered++
		}
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, ErrRejected)
	}
	l, err := q.laneLocked(q.levelOf(m))
	if err != nil {
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, err)
	}
	// The enqueue time is the entry's, not the message's: the message is shared by every
	// queue it was routed to, which may be reading it under their own locks.
	enqMs := q.now().UnixMilli()
	q.perMsgTTL = q.perMsgTTL || m.HasExpiration
	seq := l.nextSeq
	w, err := l.store.Append(seq, m)
	if err != nil {
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, err)
	}
	l.nextSeq++
	q.stats.Published++
	if q.paged && (l.diskNext < l.diskEnd || q.readyBytes+int64(m.Size()) > readyWindowBytes) {
		if l.diskNext == l.diskEnd {
			l.diskNext = seq
		}
		l.diskEnd = seq + 1
		l.diskCount++
		l.diskBytes += int64(m.Size())
		q.spillLocked(l, &entry{seq: seq, level: uint8(l.level), msg: m, enqMs: enqMs})
	} else {
		e := &entry{seq: seq, level: uint8(l.level), msg: m, enqMs: enqMs}
		q.appendReadyLocked(l, e)
		// As RabbitMQ, a message a waiting consumer can take at once is delivered whatever
		// its TTL: even a TTL of 0 only expires messages that would have to wait.
		if len(q.consumers) > 0 && l.ready[l.head] == e && q.headLaneLocked() == l {
			q.offerLocked(l, e)
		}
	}
	q.dispatchLocked()
	q.overflowLocked()
	q.expireHeadLocked()
	return w, nil
}

// Counts returns the number of ready messages, unacknowledged messages and consumers.
func (q *Queue) Counts() (ready, unacked, consumers int) {
	if r := q.opts.Replica; r != nil {
		return r.Counts()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyCountLocked(), len(q.unacked), len(q.consumers)
}

// readyCountLocked counts ready messages in every lane, in memory and on disk.
func (q *Queue) readyCountLocked() int {
	n := 0
	for _, l := range q.lanes {
		n += l.readyCount()
	}
	return n
}

// Consume adds a consumer and dispatches to it.
func (q *Queue) Consume(spec ConsumerSpec) error {
	q.mu.Lock()
	defer q.unlock()
	if q.deleted {
		return fmt.Errorf("cannot consume from queue %q: %w", q.name, ErrDeleted)
	}
	if q.exclusive || spec.Exclusive && len(q.consumers) > 0 {
		return fmt.Errorf("cannot consume from queue %q: %w", q.name, ErrExclusiveUse)
	}
	for _, c := range q.consumers {
		if c.Tag == spec.Tag && c.Consumer == spec.Consumer {
			return fmt.Errorf("cannot consume from queue %q as %q: %w", q.name, spec.Tag, ErrDuplicateTag)
		}
	}
	q.consOrder++
	c := &consumer{ConsumerSpec: spec, order: q.consOrder}
	i := sort.Search(len(q.consumers), func(i int) bool { return q.consumers[i].Priority < spec.Priority })
	q.consumers = append(q.consumers, nil)
	copy(q.consumers[i+1:], q.consumers[i:])
	q.consumers[i] = c
	q.hadConsumer = true
	q.exclusive = q.exclusive || spec.Exclusive
	if r := q.opts.Replica; r != nil {
		r.Consume(q, spec)
		return nil
	}
	q.dispatchLocked()
	return nil
}

// Cancel removes a consumer. Its unacknowledged deliveries stay unacked (they can still be
// acked, and are requeued when their channel closes), as in RabbitMQ. It reports whether the
// queue is auto-delete and has lost its last consumer, in which case the caller deletes it.
func (q *Queue) Cancel(tag string, owner Consumer) (autoDelete bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.consumers {
		if c.Tag == tag && c.Consumer == owner {
			q.consumers = append(q.consumers[:i], q.consumers[i+1:]...)
			if c.Exclusive {
				q.exclusive = false
			}
			if r := q.opts.Replica; r != nil {
				r.Cancel(tag, owner)
			}
			break
		}
	}
	if len(q.consumers) == 0 {
		q.armExpiresLocked()
	} else if q.lim.singleActive {
		q.dispatchLocked() // the next consumer may have become the active one
	}
	return q.opts.AutoDelete && q.hadConsumer && len(q.consumers) == 0 && !q.deleted
}

// Kick retries dispatch, after a consumer regained room (an ack, a drained socket).
func (q *Queue) Kick() {
	if r := q.opts.Replica; r != nil {
		r.Kick()
		return
	}
	q.mu.Lock()
	q.dispatchLocked()
	q.unlock()
}

// dispatchLocked hands ready entries to consumers, highest lane first and in order within a
// lane, until either runs out.
func (q *Queue) dispatchLocked() {
	for len(q.consumers) > 0 && !q.deleted {
		q.expireHeadLocked()
		l := q.headLaneLocked()
		if l == nil || !q.offerLocked(l, l.ready[l.head]) {
			break
		}
	}
}

// offerLocked tries consumers in priority order, round-robin within a priority: the one that
// takes the entry moves behind its equals.
func (q *Queue) offerLocked(l *lane, e *entry) bool {
	var active *consumer
	if q.lim.singleActive {
		for _, c := range q.consumers {
			if active == nil || c.order < active.order {
				active = c
			}
		}
	}
	for i, c := range q.consumers {
		if active != nil && c != active {
			continue
		}
		d := Delivery{Queue: q, ID: e.id(), Message: e.msg, Redelivered: e.redelivered, ConsumerTag: c.Tag, DeliveryCount: e.deliveries}
		if !c.Consumer.TryDeliver(d) {
			continue
		}
		q.countDeliveryLocked(e)
		q.popReadyLocked(l)
		if c.NoAck {
			q.settleLocked(e)
		} else {
			q.unacked[e.id()] = e
		}
		q.markDeliveredLocked(l, e.seq+1)
		j := i
		for j+1 < len(q.consumers) && q.consumers[j+1].Priority == c.Priority {
			q.consumers[j] = q.consumers[j+1]
			j++
		}
		q.consumers[j] = c
		return true
	}
	return false
}
