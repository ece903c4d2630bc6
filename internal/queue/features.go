package queue

// RabbitMQ's queue arguments: message TTL (x-message-ttl and the per-message expiration
// property), queue expiry (x-expires), length limits (x-max-length, x-max-length-bytes) with
// x-overflow drop-head / reject-publish / reject-publish-dlx, dead-lettering
// (x-dead-letter-exchange: the queue hands dead letters to Options.DeadLetter, which routes
// them and writes x-death), x-single-active-consumer, x-max-priority and x-delivery-limit.
//
// Semantics follow RabbitMQ: expired messages are removed when they reach the head of the
// queue (a timer makes sure that happens without consumers); the length limits count ready
// messages; drop-head drops (and dead-letters) the oldest ready messages; a message requeued
// more than x-delivery-limit times is dead-lettered with reason delivery_limit instead, and
// a redelivered message says how often it was delivered before in x-delivery-count (the front
// end adds the header from Delivery.DeliveryCount).
//
// Dead letters are collected under the queue's lock and handed over after it is released
// (unlock), so that routing them into other queues (or back into this one) cannot deadlock.

import (
	"errors"
	"math"
	"time"
)

// Dead-letter reasons, as RabbitMQ writes them in x-death.
const (
	ReasonRejected      = "rejected"
	ReasonExpired       = "expired"
	ReasonMaxLen        = "maxlen"
	ReasonDeliveryLimit = "delivery_limit"
)

// Overflow behaviours (x-overflow).
const (
	OverflowDropHead         = "drop-head"
	OverflowRejectPublish    = "reject-publish"
	OverflowRejectPublishDLX = "reject-publish-dlx"
)

// ErrRejected: the queue is full and its overflow behaviour is reject-publish(-dlx).
var ErrRejected = errors.New("queue full: message rejected")

// DeadLetter is a message leaving a queue for its dead-letter exchange.
type DeadLetter struct {
	Msg    *Message
	Reason string
	Queue  string
}

// limits are a queue's parsed arguments; -1 means unset.
type limits struct {
	messageTTL    int64
	expires       int64
	maxLength     int64
	maxBytes      int64
	overflow      string
	deadLetter    bool
	singleActive  bool
	maxPriority   int
	deliveryLimit int64
}

func argInt(args map[string]any, name string) int64 { return ArgInt(args[name]) }

// ArgInt reads a numeric queue argument as this package does: any integer type, or a float
// (truncated); -1 for anything else.
func ArgInt(v any) int64 {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case uint8:
		return int64(v)
	case int16:
		return int64(v)
	case uint16:
		return int64(v)
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case string:
		return -1
	}
	return -1
}

func parseLimits(args map[string]any) limits {
	l := limits{
		messageTTL: argInt(args, "x-message-ttl"), expires: argInt(args, "x-expires"),
		maxLength: argInt(args, "x-max-length"), maxBytes: argInt(args, "x-max-length-bytes"),
		deliveryLimit: argInt(args, "x-delivery-limit"), overflow: OverflowDropHead,
	}
	if s, ok := args["x-overflow"].(string); ok {
		l.overflow = s
	}
	_, l.deadLetter = args["x-dead-letter-exchange"].(string)
	l.singleActive, _ = args["x-single-active-consumer"].(bool)
	if p := argInt(args, "x-max-priority"); p > 0 {
		l.maxPriority = int(min(p, 255))
	}
	return l
}

// expiresAt is when e expires (Unix ms), or MaxInt64.
func (q *Queue) expiresAt(e *entry) int64 {
	ttl := q.lim.messageTTL
	if m := e.msg.ExpirationMs; e.msg.HasExpiration && m >= 0 && (ttl < 0 || m < ttl) {
		ttl = m
	}
	if ttl < 0 {
		return math.MaxInt64
	}
	return e.enqMs + ttl
}

// deadLetterLocked removes e for good: dead-lettered if the queue has a dead-letter exchange.
func (q *Queue) deadLetterLocked(e *entry, reason string) {
	q.settleLocked(e)
	if q.lim.deadLetter && q.opts.DeadLetter != nil {
		q.dl = append(q.dl, DeadLetter{Msg: e.msg, Reason: reason, Queue: q.name})
		q.stats.DeadLettered++
	}
}

// expireHeadLocked drops expired messages at the head of each lane.
func (q *Queue) expireHeadLocked() {
	if q.lim.messageTTL < 0 && !q.perMsgTTL {
		return
	}
	now := q.now().UnixMilli()
	for _, l := range q.lanes {
		for {
			if l.head == len(l.ready) {
				q.fillLocked(l)
			}
			if l.head == len(l.ready) {
				break
			}
			e := l.ready[l.head]
			at := q.expiresAt(e)
			if at > now {
				q.armExpiryLocked(at)
				break
			}
			q.popReadyLocked(l)
			q.deadLetterLocked(e, ReasonExpired)
		}
	}
}

// armExpiryLocked makes sure the queue looks at its head again at Unix ms at.
func (q *Queue) armExpiryLocked(at int64) {
	if at == math.MaxInt64 || q.timerAt != 0 && q.timerAt <= at {
		return
	}
	q.timerAt = at
	d := time.Duration(at-q.now().UnixMilli()) * time.Millisecond
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.expiryTick)
	} else {
		q.timer.Reset(d)
	}
}

func (q *Queue) expiryTick() {
	q.mu.Lock()
	q.timerAt = 0
	if !q.deleted {
		q.expireHeadLocked()
		q.dispatchLocked()
	}
	q.unlock()
}

// overflowLocked applies the length limits after an enqueue (drop-head).
func (q *Queue) overflowLocked() {
	if q.lim.overflow != OverflowDropHead {
		return
	}
	for q.overLimitLocked(0, 0) {
		l := q.headLaneLocked()
		if l == nil {
			return
		}
		e := q.popReadyLocked(l)
		q.deadLetterLocked(e, ReasonMaxLen)
	}
}

// overLimitLocked reports whether the ready messages plus n more of size bytes exceed a limit.
func (q *Queue) overLimitLocked(n int, size int64) bool {
	if q.lim.maxLength >= 0 && int64(q.readyCountLocked()+n) > q.lim.maxLength {
		return true
	}
	if q.lim.maxBytes < 0 {
		return false
	}
	total := q.readyBytes + size
	for _, l := range q.lanes {
		total += l.diskBytes
	}
	return total > q.lim.maxBytes
}

// unlock releases the queue's lock, then hands over the dead letters collected under it.
func (q *Queue) unlock() {
	dl := q.dl
	q.dl = nil
	q.signalDrainedLocked()
	q.mu.Unlock()
	if len(dl) > 0 {
		q.opts.DeadLetter(dl)
	}
}

// armExpiresLocked restarts the x-expires countdown: the queue is in use.
func (q *Queue) armExpiresLocked() {
	if q.lim.expires < 1 || q.opts.OnExpire == nil || q.deleted {
		return
	}
	q.lastUsed = q.now()
	if q.expTimer == nil {
		q.expTimer = time.AfterFunc(time.Duration(q.lim.expires)*time.Millisecond, q.expiresTick)
		return
	}
	q.expTimer.Reset(time.Duration(q.lim.expires) * time.Millisecond)
}

func (q *Queue) expiresTick() {
	q.mu.Lock()
	idle := len(q.consumers) == 0 && !q.deleted && q.now().Sub(q.lastUsed) >= time.Duration(q.lim.expires)*time.Millisecond
	q.mu.Unlock()
	if idle {
		q.opts.OnExpire()
	}
}

// Touch records a use of the queue (redeclaration, basic.get) for x-expires.
func (q *Queue) Touch() {
	q.mu.Lock()
	if len(q.consumers) == 0 {
		q.armExpiresLocked()
	}
	q.mu.Unlock()
}
