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
// original position and the order of delivery is the order of publishing.
package queue

import (
	"errors"
	"fmt"
	"math"
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
	deliveredMarkAhead = 256
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
	TimestampMs   int64 // set by the queue at publish: when the message entered it
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
}

type entry struct {
	seq         uint64
	msg         *Message
	redelivered bool
	deliveries  int // times delivered and returned (x-delivery-count)
}

type consumer struct {
	ConsumerSpec
	order uint64 // registration order, for single active consumer
}

// Queue is one queue. All methods are safe for concurrent use.
type Queue struct {
	name string
	opts Options

	mu          sync.Mutex // guards everything below
	nextSeq     uint64
	ready       []*entry // sorted by seq from head on
	head        int
	unacked     map[uint64]*entry
	consumers   []*consumer // by priority, highest first; rotated for round-robin
	hadConsumer bool
	exclusive   bool // a consumer holds exclusive access
	deleted     bool
	readyBytes  int64

	paged        bool   // the store can give messages back: bodies may leave memory
	diskNext     uint64 // ready messages [diskNext, diskEnd) are on disk only
	diskEnd      uint64
	diskCount    uint64 // how many of them are unsettled (upper bound after a restart)
	waitingRead  bool   // a NotifyReadable is pending
	delivMark    uint64 // last delivered-through mark given to the store
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
	diskBytes int64 // payload bytes of the on-disk ready range (recovered ones: Recovery.Bytes)
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
	rec := opts.Store.Recovered()
	lim := parseLimits(opts.Args)
	q := &Queue{name: name, opts: opts, unacked: map[uint64]*entry{}, nextSeq: rec.Next, lim: lim, now: opts.Now,
		paged: opts.Store.Paged() && lim.maxPriority == 0}
	q.diskNext, q.diskEnd, q.diskCount = rec.From, rec.Next, rec.Live
	q.diskBytes = int64(min(rec.Bytes, math.MaxInt64))
	q.delivMark = rec.From
	q.perMsgTTL = rec.Live > 0 // recovered messages may carry expirations
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
	q.mu.Lock()
	defer q.unlock()
	if q.deleted {
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, ErrDeleted)
	}
	if q.lim.overflow != OverflowDropHead && q.overLimitLocked(1, int64(m.Size())) {
		if q.lim.overflow == OverflowRejectPublishDLX && q.lim.deadLetter && q.opts.DeadLetter != nil {
			q.dl = append(q.dl, DeadLetter{Msg: m, Reason: ReasonMaxLen, Queue: q.name})
		}
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, ErrRejected)
	}
	m.TimestampMs = q.now().UnixMilli()
	q.perMsgTTL = q.perMsgTTL || m.HasExpiration
	seq := q.nextSeq
	w, err := q.opts.Store.Append(seq, m)
	if err != nil {
		return Waiter{}, fmt.Errorf("cannot publish to queue %q: %w", q.name, err)
	}
	q.nextSeq++
	if q.paged && (q.diskNext < q.diskEnd || q.readyBytes+int64(m.Size()) > readyWindowBytes) {
		if q.diskNext == q.diskEnd {
			q.diskNext = seq
		}
		q.diskEnd = seq + 1
		q.diskCount++
		q.diskBytes += int64(m.Size())
	} else if q.lim.maxPriority > 0 {
		q.insertReadyLocked(&entry{seq: seq, msg: m})
	} else {
		q.ready = append(q.ready, &entry{seq: seq, msg: m})
		q.readyBytes += int64(m.Size())
	}
	q.dispatchLocked()
	q.overflowLocked()
	q.expireHeadLocked()
	return w, nil
}

// Counts returns the number of ready messages, unacknowledged messages and consumers.
func (q *Queue) Counts() (ready, unacked, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ready) - q.head + int(q.diskCount), len(q.unacked), len(q.consumers)
}

// fillLocked reads messages back from disk while the in-memory window is below half full.
func (q *Queue) fillLocked() {
	for q.diskNext < q.diskEnd && (q.readyBytes < readyWindowBytes/2 || !q.paged) && !q.deleted {
		msgs, next, passed, err := q.opts.Store.ReadFrom(q.diskNext, int(max(readyWindowBytes-q.readyBytes, 1<<16)))
		for _, s := range msgs {
			if q.opts.Parse != nil {
				q.opts.Parse(s.Msg)
			}
			e := &entry{seq: s.Seq, msg: s.Msg, redelivered: s.Redelivered, deliveries: s.Deliveries}
			if q.lim.maxPriority > 0 {
				q.insertReadyLocked(e)
			} else {
				q.ready = append(q.ready, e)
				q.readyBytes += int64(s.Msg.Size())
			}
			q.diskBytes = max(0, q.diskBytes-int64(s.Msg.Size()))
		}
		q.diskCount -= min(q.diskCount, passed)
		if next == q.diskNext || err != nil {
			if err == nil && !q.waitingRead {
				q.waitingRead = true
				q.opts.Store.NotifyReadable(q.diskNext, q.readable)
			}
			return
		}
		q.diskNext = next
	}
	if q.diskNext >= q.diskEnd {
		q.diskCount, q.diskBytes = 0, 0
	}
}

// readable runs once the next on-disk message became readable (durable).
func (q *Queue) readable() {
	q.mu.Lock()
	q.waitingRead = false
	q.dispatchLocked()
	q.unlock()
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
	q.mu.Lock()
	q.dispatchLocked()
	q.unlock()
}

// dispatchLocked hands ready entries to consumers, in order, until either runs out.
func (q *Queue) dispatchLocked() {
	var through uint64
	for len(q.consumers) > 0 && !q.deleted {
		if q.head == len(q.ready) || q.readyBytes < readyWindowBytes/2 {
			q.fillLocked()
			if q.head == len(q.ready) {
				break
			}
		}
		q.expireHeadLocked()
		if q.head == len(q.ready) {
			break
		}
		e := q.ready[q.head]
		if !q.offerLocked(e) {
			break
		}
		through = max(through, e.seq+1)
	}
	q.markDeliveredLocked(through)
}

// markDeliveredLocked tells the store how far deliveries went, for the redelivered flag after
// a restart.
//
// The mark is written ahead (deliveredMarkAhead positions past what was delivered) so that a
// busy queue writes one mark per that many deliveries instead of one per dispatch: a message
// flagged redelivered after a crash that was in fact never delivered is allowed by AMQP
// ("may have been delivered before"); the reverse is not, and cannot happen.
func (q *Queue) markDeliveredLocked(through uint64) {
	if through > q.delivMark {
		q.delivMark = through + deliveredMarkAhead
		q.opts.Store.Delivered(q.delivMark)
	}
}

// offerLocked tries consumers in priority order, round-robin within a priority: the one that
// takes the entry moves behind its equals.
func (q *Queue) offerLocked(e *entry) bool {
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
		d := Delivery{Queue: q, ID: e.seq, Message: e.msg, Redelivered: e.redelivered, ConsumerTag: c.Tag, DeliveryCount: e.deliveries}
		if !c.Consumer.TryDeliver(d) {
			continue
		}
		q.popReadyLocked()
		if c.NoAck {
			q.settleLocked(e)
		} else {
			q.unacked[e.seq] = e
		}
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

func (q *Queue) popReadyLocked() *entry {
	e := q.ready[q.head]
	q.ready[q.head] = nil
	q.head++
	q.readyBytes -= int64(e.msg.Size())
	if q.head == len(q.ready) {
		q.ready, q.head = q.ready[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.ready) {
		n := copy(q.ready, q.ready[q.head:])
		clear(q.ready[n:])
		q.ready, q.head = q.ready[:n], 0
	}
	return e
}

// insertReadyLocked puts a requeued entry back at its original position.
func (q *Queue) insertReadyLocked(e *entry) {
	q.readyBytes += int64(e.msg.Size())
	rest := q.ready[q.head:]
	i := sort.Search(len(rest), func(i int) bool { return q.readyLess(e, rest[i]) })
	if i == 0 && q.head > 0 {
		q.head--
		q.ready[q.head] = e
		return
	}
	at := q.head + i
	q.ready = append(q.ready, nil)
	copy(q.ready[at+1:], q.ready[at:])
	q.ready[at] = e
}

// settleLocked records settlements. A settlement the store cannot record costs at most a
// redelivery after a restart; the in-memory state must move on regardless, so the error is
// not surfaced here.
func (q *Queue) settleLocked(es ...*entry) {
	if len(es) == 0 {
		return
	}
	seqs, sizes := q.seqBuf[:0], q.sizeBuf[:0]
	for _, e := range es {
		seqs = append(seqs, e.seq)
		sizes = append(sizes, persistentSize(e.msg))
	}
	_ = q.opts.Store.Settle(seqs, sizes)
	q.seqBuf, q.sizeBuf = seqs[:0], sizes[:0]
	q.sinceReclaim += len(seqs)
	if q.paged && q.sinceReclaim >= reclaimEverySettles {
		q.reclaimLocked()
	}
}

// reclaimLocked tells the store the lowest sequence number still live.
func (q *Queue) reclaimLocked() {
	q.sinceReclaim = 0
	low := q.nextSeq
	if q.diskNext < q.diskEnd {
		low = q.diskNext
	}
	if q.head < len(q.ready) {
		low = min(low, q.ready[q.head].seq)
	}
	for seq := range q.unacked {
		low = min(low, seq)
	}
	q.opts.Store.Reclaim(low)
}
