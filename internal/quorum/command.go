package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command kinds, the first byte of an encoded command after the version.
const (
	cmdVersion = 1
	// cmdVersion2 adds to an enqueue the proposer's clock and the message's own TTL.
	cmdVersion2 = 2
	// cmdVersion3 adds the proposer's clock to the commands that use the queue or drop a
	// consumer (x-expires), and the kinds touch, delete and expire-queue.
	cmdVersion3 = 3

	kindEnqueue  = 1
	kindCheckout = 2
	kindCancel   = 3
	kindSettle   = 4
	kindReturn   = 5
	kindDiscard  = 6
	kindDown     = 7
	kindNodeDown = 8
	kindPurge    = 9
	kindGet      = 10
	kindExpire   = 11
	kindTouch    = 12
	kindDelete   = 13
	kindRetire   = 14 // expire the queue (x-expires)
)

// ErrBadCommand: an entry that does not decode as a command (a newer version, or damage).
var ErrBadCommand = errors.New("malformed quorum queue command")

// ConsumerID names a consumer cluster-wide: the node whose channel runs it, and a key unique
// on that node (for example connection, channel and consumer tag).
type ConsumerID struct {
	Node uint64
	Key  string
}

// Command is one operation on the queue, proposed through its Raft group.
type Command struct {
	kind     byte
	consumer ConsumerID
	prefetch uint32
	ids      []uint64
	msg      Message
	noAck    bool
	ifUnused bool  // delete
	ifEmpty  bool  // delete
	now      int64 // ms since the epoch: the proposer's clock (enqueue, expire)
	ttl      int64 // an enqueue's per-message TTL in ms (expiration); < 0: none
}

// Enqueue adds a message: the exchange and routing key it was published with, its encoded
// properties and its body.
func Enqueue(exchange, routingKey string, properties, body []byte) Command {
	return Command{kind: kindEnqueue, ttl: -1, msg: Message{Exchange: exchange, RoutingKey: routingKey, Properties: properties, Body: body}}
}

// WithClock stamps an enqueue with the proposer's clock (ms since the epoch) and the
// message's own TTL (its expiration, < 0: none): the apply computes when it expires from
// these, never from the replica's clock, so every replica agrees.
func (c Command) WithClock(now, ttl int64) Command {
	c.now, c.ttl = now, ttl
	return c
}

// Expire dead-letters (reason expired) the ready messages expired at now, the proposing
// leader's clock (ms since the epoch).
func Expire(now int64) Command { return Command{kind: kindExpire, now: now, ttl: -1} }

// At stamps a command with the proposer's clock (ms since the epoch): a checkout, get,
// cancel, down or node-down records a use of the queue at that time (x-expires), never at
// the replica's clock.
func (c Command) At(now int64) Command {
	c.now = now
	return c
}

// Touch records a use of the queue at now (a redeclaration or a passive declare), for
// x-expires.
func Touch(now int64) Command { return Command{kind: kindTouch, now: now, ttl: -1} }

// Delete marks the queue deleted unless ifUnused and it has consumers, or ifEmpty and it has
// ready messages (queue.delete): Apply's result is a DeleteResult. A deleted queue accepts
// and drops what is published to it, delivers nothing, and is removed from the cluster by
// the topology group (its declaration deleted); the queue's leader sees to it.
func Delete(ifUnused, ifEmpty bool) Command {
	return Command{kind: kindDelete, ifUnused: ifUnused, ifEmpty: ifEmpty, ttl: -1}
}

// ExpireQueue marks the queue deleted if, at now (the proposing leader's clock), it has had
// no consumer and no use for its x-expires: Apply's result is a DeleteResult.
func ExpireQueue(now int64) Command { return Command{kind: kindRetire, now: now, ttl: -1} }

// clocked reports whether the kind carries the proposer's clock in version 3.
func clocked(kind byte) bool {
	switch kind {
	case kindCheckout, kindCancel, kindDown, kindNodeDown, kindGet, kindTouch, kindRetire:
		return true
	}
	return false
}

// Checkout attaches a consumer with a prefetch (0: unlimited); deliveries to it follow in
// the results of this and later commands.
func Checkout(c ConsumerID, prefetch uint32) Command {
	return Command{kind: kindCheckout, consumer: c, prefetch: prefetch}
}

// Cancel stops deliveries to a consumer; what it holds stays checked out until settled,
// returned or discarded, or until Down.
func Cancel(c ConsumerID) Command { return Command{kind: kindCancel, consumer: c} }

// Settle acknowledges messages a consumer holds.
func Settle(c ConsumerID, ids ...uint64) Command {
	return Command{kind: kindSettle, consumer: c, ids: ids}
}

// Return requeues messages a consumer holds (basic.nack/reject with requeue): their delivery
// count grows by one.
func Return(c ConsumerID, ids ...uint64) Command {
	return Command{kind: kindReturn, consumer: c, ids: ids}
}

// Discard rejects messages a consumer holds without requeue: they are dead-lettered.
func Discard(c ConsumerID, ids ...uint64) Command {
	return Command{kind: kindDiscard, consumer: c, ids: ids}
}

// Down removes a consumer (its channel closed) and returns everything it held.
func Down(c ConsumerID) Command { return Command{kind: kindDown, consumer: c} }

// NodeDown removes every consumer of a node (it restarted or left) and returns what they held.
func NodeDown(node uint64) Command {
	return Command{kind: kindNodeDown, consumer: ConsumerID{Node: node}}
}

// Purge removes the ready messages (not the checked-out ones, as RabbitMQ); Apply's result
// is how many it removed (an int).
func Purge() Command { return Command{kind: kindPurge} }

// Get checks out the next ready message to c, a transient consumer of one message
// (basic.get) that takes no deliveries: settle, return or discard it by c like a consumer's
// delivery. With noAck it is settled at once. Apply's result is a GetResult.
func Get(c ConsumerID, noAck bool) Command { return Command{kind: kindGet, consumer: c, noAck: noAck} }

// Encode is the command as a Raft entry's payload.
func (c Command) Encode() []byte {
	v := byte(cmdVersion)
	switch {
	case c.kind == kindTouch || c.kind == kindDelete || c.kind == kindRetire || clocked(c.kind) && c.now != 0:
		v = cmdVersion3
	case c.kind == kindEnqueue && (c.now != 0 || c.ttl >= 0) || c.kind == kindExpire:
		v = cmdVersion2
	}
	b := []byte{v, c.kind}
	b = binary.BigEndian.AppendUint64(b, c.consumer.Node)
	b = appendBytes(b, []byte(c.consumer.Key))
	switch c.kind {
	case kindEnqueue:
		b = appendBytes(b, []byte(c.msg.Exchange))
		b = appendBytes(b, []byte(c.msg.RoutingKey))
		b = appendBytes(b, c.msg.Properties)
		b = appendBytes(b, c.msg.Body)
		if v >= cmdVersion2 {
			b = binary.BigEndian.AppendUint64(b, uint64(c.now))
			b = binary.BigEndian.AppendUint64(b, uint64(c.ttl))
		}
	case kindExpire:
		b = binary.BigEndian.AppendUint64(b, uint64(c.now))
	case kindCheckout:
		b = binary.BigEndian.AppendUint32(b, c.prefetch)
	case kindGet:
		b = append(b, boolByte(c.noAck))
	case kindDelete:
		b = append(b, boolByte(c.ifUnused), boolByte(c.ifEmpty))
	case kindSettle, kindReturn, kindDiscard:
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.ids)))
		for _, id := range c.ids {
			b = binary.BigEndian.AppendUint64(b, id)
		}
	}
	if v == cmdVersion3 && clocked(c.kind) {
		b = binary.BigEndian.AppendUint64(b, uint64(c.now))
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendBytes(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// DecodeCommand parses an entry's payload.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	c := Command{ttl: -1}
	v := d.byte()
	if v != cmdVersion && v != cmdVersion2 && v != cmdVersion3 {
		return c, fmt.Errorf("%w: version %d", ErrBadCommand, v)
	}
	c.kind = d.byte()
	c.consumer.Node = d.u64()
	c.consumer.Key = string(d.bytes())
	switch c.kind {
	case kindEnqueue:
		c.msg.Exchange = string(d.bytes())
		c.msg.RoutingKey = string(d.bytes())
		c.msg.Properties = d.bytes()
		c.msg.Body = d.bytes()
		if v >= cmdVersion2 {
			c.now = int64(d.u64())
			c.ttl = int64(d.u64())
		}
	case kindExpire:
		c.now = int64(d.u64())
	case kindCheckout:
		c.prefetch = d.u32()
	case kindGet:
		c.noAck = d.byte() == 1
	case kindDelete:
		if v < cmdVersion3 {
			return c, fmt.Errorf("%w: delete in version %d", ErrBadCommand, v)
		}
		c.ifUnused = d.byte() == 1
		c.ifEmpty = d.byte() == 1
	case kindSettle, kindReturn, kindDiscard:
		n := d.u32()
		if uint64(n)*8 > uint64(len(d.b)) {
			return c, fmt.Errorf("%w: %d ids in %d bytes", ErrBadCommand, n, len(d.b))
		}
		c.ids = make([]uint64, n)
		for i := range c.ids {
			c.ids[i] = d.u64()
		}
	case kindCancel, kindDown, kindNodeDown, kindPurge:
	case kindTouch, kindRetire:
		if v < cmdVersion3 {
			return c, fmt.Errorf("%w: kind %d in version %d", ErrBadCommand, c.kind, v)
		}
	default:
		return c, fmt.Errorf("%w: kind %d", ErrBadCommand, c.kind)
	}
	if v == cmdVersion3 && clocked(c.kind) {
		c.now = int64(d.u64())
	}
	if d.bad || len(d.b) != 0 {
		return c, fmt.Errorf("%w: bad length", ErrBadCommand)
	}
	return c, nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || n < 0 || n > len(d.b) {
		d.bad = true
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) bytes() []byte {
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	return d.take(int(n))
}
