// Package quorum is a quorum queue's replicated state machine (x-queue-type=quorum): the
// queue's whole state (its messages, what is ready, its consumers and what each holds) is
// changed only by commands committed in the queue's Raft group (internal/cluster), applied in
// log order on every member. Which consumer gets which message is decided inside Apply,
// deterministically, so every replica agrees on every delivery (as RabbitMQ's quorum queues,
// whose leader's state machine issues deliveries as effects): the node whose channel runs a
// consumer hands it the deliveries its own replica decided, whichever node leads.
//
// Commands (command.go): enqueue, checkout (a consumer attaches with its prefetch), cancel,
// settle (ack), return (nack/reject with requeue: the delivery count grows), discard (reject
// without requeue: dead-lettered), down (a channel closed: its consumers' messages return)
// and node-down. Returned messages are served before the others, in the order they returned.
// A message whose returns exceed the delivery limit is dead-lettered (reason delivery_limit).
// Max length (messages, bytes) counts ready messages; overflow drop-head dead-letters the
// oldest ready ones (reason maxlen), reject-publish refuses the enqueue. Purge removes the
// ready messages; get checks one out to a transient consumer (basic.get). An enqueue
// carries its proposer's clock, from which (and x-message-ttl or its own TTL) its expiry is
// computed; expire, proposed by the leader with its clock, dead-letters (reason expired) the
// ready messages expired at that time: no replica reads its own clock.
//
// A message's id is the Raft index of its enqueue, the same on every replica.
package quorum

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/yardmq/yard/internal/cluster"
)

// Dead-letter reasons, RabbitMQ's x-death reasons.
const (
	ReasonRejected      = "rejected"
	ReasonMaxLen        = "maxlen"
	ReasonDeliveryLimit = "delivery_limit"
	ReasonExpired       = "expired"
)

// Overflow behaviours (x-overflow).
const (
	OverflowDropHead      = "drop-head"
	OverflowRejectPublish = "reject-publish"
)

// Config is a queue's declared limits; every replica must use the same (they come from the
// replicated declaration).
type Config struct {
	DeliveryLimit  int64  // returns beyond this dead-letter the message; < 0: no limit
	MaxLength      int64  // ready messages; < 0: no limit
	MaxLengthBytes int64  // ready bytes (properties and body); < 0: no limit
	Overflow       string // OverflowDropHead (default) or OverflowRejectPublish
	MessageTTL     int64  // x-message-ttl in ms; < 0: none
	// SingleActive (x-single-active-consumer): only the first consumer attached (and not
	// cancelled) gets deliveries; when it goes, the next one in checkout order takes over.
	SingleActive bool
	// Expires (x-expires, ms; <= 0: never): the queue is deleted once it has had no consumer
	// and no use (checkout, get, touch) for that long, as of an ExpireQueue's clock.
	Expires int64
}

// NoLimits is a Config without limits.
var NoLimits = Config{DeliveryLimit: -1, MaxLength: -1, MaxLengthBytes: -1, MessageTTL: -1}

// Message is one message of the queue.
type Message struct {
	ID         uint64 // the Raft index of its enqueue
	Exchange   string `json:",omitempty"`
	RoutingKey string `json:",omitempty"`
	Properties []byte
	Body       []byte
	// DeliveryCount is how many times it was returned (x-delivery-count).
	DeliveryCount int64
	// Delivered: it was handed to a consumer before (the redelivered flag of the next one).
	Delivered bool
	// ExpiresAt is when it expires (ms since the epoch, from its enqueue's clock and TTL); 0:
	// never.
	ExpiresAt int64 `json:",omitempty"`
}

func (m *Message) size() int64 { return int64(len(m.Properties) + len(m.Body)) }

// Delivery is a message handed to a consumer; settle, return or discard it by Message.ID.
type Delivery struct {
	Consumer    ConsumerID
	Message     *Message // a copy, as it was when delivered
	Redelivered bool
}

// DeleteResult is Apply's result for a delete or an expire-queue.
type DeleteResult struct {
	Deleted  bool // the queue is deleted (now, or it was already)
	InUse    bool // refused: if-unused, and it has consumers
	NotEmpty bool // refused: if-empty, and it has ready messages
	Ready    int  // the ready messages it dropped
}

// GetResult is Apply's result for a get.
type GetResult struct {
	Message     *Message // a copy; nil: the queue had no ready message
	Redelivered bool
	Remaining   int // ready messages left
}

// EnqueueResult is Apply's result for an enqueue.
type EnqueueResult struct {
	ID       uint64
	Accepted bool // false: refused by x-overflow=reject-publish (basic.nack to a publisher)
}

// Effects receives what a command caused, after Apply, on every replica, from the Raft
// host's apply goroutine: they must not block. Deliver is called only for consumers of this
// node; DeadLetter on every replica (the wiring performs it on the leader only).
type Effects interface {
	Deliver(d Delivery)
	DeadLetter(m *Message, reason string)
}

type consumer struct {
	id        ConsumerID
	prefetch  uint32
	cancelled bool
	held      map[uint64]*Message
}

// Queue is the state machine (cluster.StateMachine). Safe for concurrent readers.
type Queue struct {
	self    uint64
	cfg     Config
	effects Effects

	mu         sync.Mutex // guards the state below
	applied    uint64
	returns    []*Message // returned, served first
	ready      []*Message
	readyBytes int64
	consumers  []*consumer // in checkout order
	cursor     int         // next consumer to serve (round robin)
	// lastUse is the clock (ms since the epoch) of the last command that used the queue or
	// left it without consumers (x-expires); 0 until the first clocked command.
	lastUse int64
	deleted bool // deleted (Delete, ExpireQueue): the topology group removes it

	// pending effects of the command being applied, handed out after the lock is released
	deliveries []Delivery
	dead       []deadLetter
}

type deadLetter struct {
	m      *Message
	reason string
}

// New is an empty queue replica on node self.
func New(self uint64, cfg Config, effects Effects) *Queue {
	if cfg.Overflow == "" {
		cfg.Overflow = OverflowDropHead
	}
	return &Queue{self: self, cfg: cfg, effects: effects}
}

var _ cluster.StateMachine = (*Queue)(nil)

// Apply applies one committed command (cluster.StateMachine).
func (q *Queue) Apply(e cluster.Entry) (any, error) {
	c, err := DecodeCommand(e.Data)
	if err != nil {
		return nil, fmt.Errorf("cannot apply entry %d: %w", e.Index, err)
	}
	q.mu.Lock()
	v, err := q.applyLocked(e.Index, c)
	q.applied = e.Index
	ds, dl := q.deliveries, q.dead
	q.deliveries, q.dead = nil, nil
	q.mu.Unlock()
	if q.effects != nil {
		for _, d := range ds {
			q.effects.Deliver(d)
		}
		for _, d := range dl {
			q.effects.DeadLetter(d.m, d.reason)
		}
	}
	return v, err
}

func (q *Queue) applyLocked(index uint64, c Command) (any, error) {
	if q.lastUse == 0 && c.now != 0 {
		q.lastUse = c.now // the queue's first clocked command: its life starts
	}
	if q.deleted {
		return q.applyDeleted(index, c)
	}
	switch c.kind {
	case kindTouch:
		q.use(c.now)
	case kindDelete:
		_, _, consumers := q.countsLocked()
		if c.ifUnused && consumers > 0 {
			return DeleteResult{InUse: true}, nil
		}
		if c.ifEmpty && q.readyLen() > 0 {
			return DeleteResult{NotEmpty: true}, nil
		}
		return q.deleteLocked(), nil
	case kindRetire:
		if !q.expiredLocked(c.now) {
			return DeleteResult{}, nil
		}
		return q.deleteLocked(), nil
	case kindEnqueue:
		m := c.msg
		m.ID = index
		ttl := q.cfg.MessageTTL
		if c.ttl >= 0 && (ttl < 0 || c.ttl < ttl) {
			ttl = c.ttl
		}
		if ttl >= 0 && c.now != 0 {
			m.ExpiresAt = max(c.now+ttl, 1)
		}
		if q.cfg.Overflow == OverflowRejectPublish && q.full(m.size()) {
			return EnqueueResult{ID: index}, nil
		}
		q.ready = append(q.ready, &m)
		q.readyBytes += m.size()
		for q.overLimit() {
			q.discardLocked(q.popReady(), ReasonMaxLen)
		}
		q.dispatch()
		return EnqueueResult{ID: index, Accepted: true}, nil
	case kindCheckout:
		q.use(c.now)
		if k := q.find(c.consumer); k != nil {
			k.prefetch, k.cancelled = c.prefetch, false
		} else {
			q.consumers = append(q.consumers, &consumer{id: c.consumer, prefetch: c.prefetch, held: map[uint64]*Message{}})
		}
		q.dispatch()
	case kindCancel:
		if k := q.find(c.consumer); k != nil {
			if !k.cancelled {
				q.use(c.now) // a consumer leaves: unused from now on, if it was the last
			}
			k.cancelled = true
			q.dropIfIdle(k)
		}
	case kindSettle, kindReturn, kindDiscard:
		k := q.find(c.consumer)
		if k == nil {
			return nil, nil // already down: its messages were returned
		}
		for _, id := range c.ids {
			m := k.held[id]
			if m == nil {
				continue // settled twice, or never held: ignored as RabbitMQ does
			}
			delete(k.held, id)
			switch c.kind {
			case kindReturn:
				m.DeliveryCount++
				q.requeue(m)
			case kindDiscard:
				q.discardLocked(m, ReasonRejected)
			}
		}
		q.dropIfIdle(k)
		q.dispatch()
	case kindDown:
		if k := q.find(c.consumer); k != nil {
			if !k.cancelled {
				q.use(c.now)
			}
			q.remove(k)
		}
		q.dispatch()
	case kindExpire:
		q.returns = q.expire(q.returns, c.now)
		q.ready = q.expire(q.ready, c.now)
	case kindPurge:
		n := q.readyLen()
		for _, m := range slices.Concat(q.returns, q.ready) {
			q.readyBytes -= m.size()
		}
		q.returns, q.ready = nil, nil
		return n, nil
	case kindGet:
		q.use(c.now)
		if q.readyLen() == 0 {
			return GetResult{}, nil
		}
		m := q.popReady()
		cp := *m
		res := GetResult{Message: &cp, Redelivered: m.Delivered, Remaining: q.readyLen()}
		m.Delivered = true
		if !c.noAck {
			// held by a cancelled consumer: it takes no deliveries, is not counted, and is
			// forgotten once it holds nothing
			k := q.find(c.consumer)
			if k == nil {
				k = &consumer{id: c.consumer, cancelled: true, held: map[uint64]*Message{}}
				q.consumers = append(q.consumers, k)
			}
			k.held[m.ID] = m
		}
		return res, nil
	case kindNodeDown:
		for _, k := range slices.Clone(q.consumers) {
			if k.id.Node == c.consumer.Node {
				if !k.cancelled {
					q.use(c.now)
				}
				q.remove(k)
			}
		}
		q.dispatch()
	}
	return nil, nil
}

// use records a use of the queue at now (0: a command without a clock, from an older yard).
func (q *Queue) use(now int64) {
	q.lastUse = max(q.lastUse, now)
}

// expiredLocked reports whether the queue has been unused for its x-expires at now: no
// consumer (but a transient one of basic.get) and no use since now - Expires.
func (q *Queue) expiredLocked(now int64) bool {
	if q.cfg.Expires <= 0 || q.lastUse == 0 {
		return false
	}
	if _, _, consumers := q.countsLocked(); consumers > 0 {
		return false
	}
	return now-q.lastUse >= q.cfg.Expires
}

// deleteLocked marks the queue deleted and drops its ready messages; what consumers hold
// goes with the queue.
func (q *Queue) deleteLocked() DeleteResult {
	n := q.readyLen()
	q.deleted = true
	q.returns, q.ready, q.readyBytes = nil, nil, 0
	return DeleteResult{Deleted: true, Ready: n}
}

// applyDeleted applies a command to a deleted queue: a publish is accepted and dropped (as
// one routed to a queue deleted just after), nothing is delivered, a delete is done.
func (q *Queue) applyDeleted(index uint64, c Command) (any, error) {
	switch c.kind {
	case kindEnqueue:
		return EnqueueResult{ID: index, Accepted: true}, nil
	case kindDelete, kindRetire:
		return DeleteResult{Deleted: true}, nil
	case kindGet:
		return GetResult{}, nil
	case kindPurge:
		return 0, nil
	}
	return nil, nil
}

// Deleted reports whether the queue was deleted (its declaration may still be there: the
// queue's leader has the topology group delete it).
func (q *Queue) Deleted() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}

// ExpiresAt is when the queue expires (x-expires: ms since the epoch) unless used first;
// 0: not now (no x-expires, consumers attached, or deleted).
func (q *Queue) ExpiresAt() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted || q.cfg.Expires <= 0 || q.lastUse == 0 {
		return 0
	}
	if _, _, consumers := q.countsLocked(); consumers > 0 {
		return 0
	}
	return q.lastUse + q.cfg.Expires
}

// expire dead-letters the messages of ms expired at now and returns the others.
func (q *Queue) expire(ms []*Message, now int64) []*Message {
	out := ms[:0]
	for _, m := range ms {
		if m.ExpiresAt != 0 && m.ExpiresAt <= now {
			q.readyBytes -= m.size()
			q.discardLocked(m, ReasonExpired)
			continue
		}
		out = append(out, m)
	}
	clear(ms[len(out):])
	return out
}

// NextExpiry is when the first ready message expires (ms since the epoch); 0: none will.
func (q *Queue) NextExpiry() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next int64
	for _, m := range slices.Concat(q.returns, q.ready) {
		if m.ExpiresAt != 0 && (next == 0 || m.ExpiresAt < next) {
			next = m.ExpiresAt
		}
	}
	return next
}

// requeue puts a returned message back, or dead-letters it past the delivery limit.
func (q *Queue) requeue(m *Message) {
	if q.cfg.DeliveryLimit >= 0 && m.DeliveryCount > q.cfg.DeliveryLimit {
		q.discardLocked(m, ReasonDeliveryLimit)
		return
	}
	q.returns = append(q.returns, m)
	q.readyBytes += m.size()
}

// remove drops a consumer, returning what it held in id order (without counting a return).
func (q *Queue) remove(k *consumer) {
	i := slices.Index(q.consumers, k)
	q.consumers = slices.Delete(q.consumers, i, i+1)
	if q.cursor > i {
		q.cursor--
	}
	for _, id := range slices.Sorted(mapKeys(k.held)) {
		q.returns = append(q.returns, k.held[id])
		q.readyBytes += k.held[id].size()
	}
}

// dropIfIdle forgets a cancelled consumer once it holds nothing.
func (q *Queue) dropIfIdle(k *consumer) {
	if k.cancelled && len(k.held) == 0 {
		q.remove(k)
	}
}

func (q *Queue) discardLocked(m *Message, reason string) {
	q.dead = append(q.dead, deadLetter{m, reason})
}

func (q *Queue) find(id ConsumerID) *consumer {
	for _, k := range q.consumers {
		if k.id == id {
			return k
		}
	}
	return nil
}

func (q *Queue) readyLen() int { return len(q.returns) + len(q.ready) }

func (q *Queue) full(size int64) bool {
	return (q.cfg.MaxLength >= 0 && int64(q.readyLen()) >= q.cfg.MaxLength) ||
		(q.cfg.MaxLengthBytes >= 0 && q.readyBytes+size > q.cfg.MaxLengthBytes)
}

func (q *Queue) overLimit() bool {
	return q.readyLen() > 0 && ((q.cfg.MaxLength >= 0 && int64(q.readyLen()) > q.cfg.MaxLength) ||
		(q.cfg.MaxLengthBytes >= 0 && q.readyBytes > q.cfg.MaxLengthBytes))
}

// popReady takes the next ready message: returned ones first.
func (q *Queue) popReady() *Message {
	var m *Message
	if len(q.returns) > 0 {
		m, q.returns = q.returns[0], q.returns[1:]
	} else {
		m, q.ready = q.ready[0], q.ready[1:]
	}
	q.readyBytes -= m.size()
	return m
}

// dispatch hands ready messages to consumers with room, round robin from the cursor.
func (q *Queue) dispatch() {
	for q.readyLen() > 0 && len(q.consumers) > 0 {
		served := false
		for range q.consumers {
			if q.cursor >= len(q.consumers) {
				q.cursor = 0
			}
			k := q.consumers[q.cursor]
			q.cursor++
			if q.cfg.SingleActive && k != q.active() {
				continue
			}
			if k.cancelled || (k.prefetch > 0 && len(k.held) >= int(k.prefetch)) {
				continue
			}
			m := q.popReady()
			k.held[m.ID] = m
			if k.id.Node == q.self {
				c := *m // a copy: the state's own changes on later returns
				q.deliveries = append(q.deliveries, Delivery{Consumer: k.id, Message: &c, Redelivered: m.Delivered})
			}
			m.Delivered = true
			served = true
			break
		}
		if !served {
			return
		}
	}
}

// active is the single active consumer: the first one not cancelled.
func (q *Queue) active() *consumer {
	for _, k := range q.consumers {
		if !k.cancelled {
			return k
		}
	}
	return nil
}

// Counts are the ready and checked-out messages and the active consumers.
func (q *Queue) Counts() (ready, unacked, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.countsLocked()
}

func (q *Queue) countsLocked() (ready, unacked, consumers int) {
	for _, k := range q.consumers {
		unacked += len(k.held)
		if !k.cancelled {
			consumers++
		}
	}
	return q.readyLen(), unacked, consumers
}

// Applied is the index of the last command applied.
func (q *Queue) Applied() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.applied
}

// snapshot is the state's encoding: slices only, ids sorted, so every replica's snapshot of
// the same state is the same bytes.
type snapshot struct {
	Applied   uint64         `json:"applied"`
	Returns   []*Message     `json:"returns"`
	Ready     []*Message     `json:"ready"`
	Consumers []snapConsumer `json:"consumers"`
	Cursor    int            `json:"cursor"`
	LastUse   int64          `json:"last_use,omitempty"`
	Deleted   bool           `json:"deleted,omitempty"`
}

type snapConsumer struct {
	Node      uint64     `json:"node"`
	Key       string     `json:"key"`
	Prefetch  uint32     `json:"prefetch"`
	Cancelled bool       `json:"cancelled"`
	Held      []*Message `json:"held"` // by id
}

// Snapshot encodes the state (cluster.StateMachine).
func (q *Queue) Snapshot() ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := snapshot{Applied: q.applied, Returns: q.returns, Ready: q.ready, Cursor: q.cursor, LastUse: q.lastUse, Deleted: q.deleted,
		Consumers: make([]snapConsumer, 0, len(q.consumers))}
	for _, k := range q.consumers {
		sc := snapConsumer{Node: k.id.Node, Key: k.id.Key, Prefetch: k.prefetch, Cancelled: k.cancelled}
		for _, id := range slices.Sorted(mapKeys(k.held)) {
			sc.Held = append(sc.Held, k.held[id])
		}
		s.Consumers = append(s.Consumers, sc)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("cannot encode quorum queue snapshot: %w", err)
	}
	return data, nil
}

// Restore replaces the state with a snapshot's (cluster.StateMachine). Deliveries it holds
// for this node's consumers are not handed out again: those consumers belong to a previous
// life of this node, which proposes NodeDown to return them.
func (q *Queue) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("cannot decode quorum queue snapshot: %w", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.applied, q.returns, q.ready, q.cursor = s.Applied, s.Returns, s.Ready, s.Cursor
	q.lastUse, q.deleted = s.LastUse, s.Deleted
	q.readyBytes = 0
	for _, m := range slices.Concat(q.returns, q.ready) {
		q.readyBytes += m.size()
	}
	q.consumers = nil
	for _, sc := range s.Consumers {
		k := &consumer{id: ConsumerID{sc.Node, sc.Key}, prefetch: sc.Prefetch, cancelled: sc.Cancelled, held: map[uint64]*Message{}}
		for _, m := range sc.Held {
			k.held[m.ID] = m
		}
		q.consumers = append(q.consumers, k)
	}
	return nil
}

func mapKeys(m map[uint64]*Message) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ConsumerNodes are the nodes with consumers attached, ascending.
func (q *Queue) ConsumerNodes() []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []uint64
	for _, k := range q.consumers {
		if !slices.Contains(out, k.id.Node) {
			out = append(out, k.id.Node)
		}
	}
	slices.Sort(out)
	return out
}
