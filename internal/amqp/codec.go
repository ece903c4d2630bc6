package amqp

// The AMQP message format as the domain (internal/vhost) and the queue engine need it:
// reading priority and expiration from message properties, the field tables arguments are
// kept as in the catalog, RabbitMQ's x-death headers on dead-lettered messages, and
// x-delivery-count on redeliveries.

import (
	"strconv"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// Codec is the AMQP message format the domain needs (vhost.Codec).
type Codec struct{}

var _ vhost.Codec = Codec{}

// AppendTable appends t as a field table.
func (Codec) AppendTable(dst []byte, t map[string]any) []byte { return wire.AppendTable(dst, t) }

// DecodeTable decodes a field table.
func (Codec) DecodeTable(b []byte) (map[string]any, error) { return wire.DecodeTable(b) }

// ParseMessage fills m's priority and per-message TTL from its properties.
func (Codec) ParseMessage(m *queue.Message) { parseMessage(m) }

// DeadLettered returns m's properties with RabbitMQ's dead-lettering headers, and the headers.
func (Codec) DeadLettered(m *queue.Message, reason, queueName string, now time.Time) ([]byte, map[string]any) {
	props := withDeath(m, reason, queueName, now)
	var p wire.BasicProperties
	_ = p.Decode(props)
	return props, p.Headers
}

// parseMessage fills m's priority and per-message TTL from its properties.
func parseMessage(m *queue.Message) {
	var p wire.BasicProperties
	if len(m.Properties) < 2 {
		return
	}
	flags := uint16(m.Properties[0])<<8 | uint16(m.Properties[1])
	if flags&(wire.FlagBasicPriority|wire.FlagBasicExpiration) == 0 {
		return
	}
	if p.Decode(m.Properties) != nil {
		return
	}
	m.Priority = p.Priority
	if p.Flags&wire.FlagBasicExpiration != 0 {
		if ms, err := strconv.ParseInt(p.Expiration, 10, 64); err == nil && ms >= 0 {
			m.HasExpiration, m.ExpirationMs = true, ms
		}
	}
}

// withDeath returns the properties of m with RabbitMQ's dead-lettering headers: x-death (one
// table per queue and reason, most recent first, with count, reason, queue, time, exchange,
// routing-keys and original-expiration), x-first-death-* and x-last-death-*; the expiration
// property is removed so that the message does not expire again.
func withDeath(m *queue.Message, reason, queueName string, now time.Time) []byte {
	var p wire.BasicProperties
	_ = p.Decode(m.Properties)
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	deaths, _ := p.Headers["x-death"].([]any)
	var entry wire.Table
	rest := make([]any, 0, len(deaths)+1)
	for _, d := range deaths {
		t, ok := d.(wire.Table)
		if ok && entry == nil && t["queue"] == queueName && t["reason"] == reason {
			entry = t
			continue
		}
		rest = append(rest, d)
	}
	if entry == nil {
		entry = wire.Table{"count": int64(0), "reason": reason, "queue": queueName,
			"exchange": m.Exchange, "routing-keys": []any{m.RoutingKey}}
		if p.Flags&wire.FlagBasicExpiration != 0 {
			entry["original-expiration"] = p.Expiration
		}
	}
	n, _ := entry["count"].(int64)
	entry["count"] = n + 1
	entry["time"] = now.Truncate(time.Second)
	p.Headers["x-death"] = append([]any{entry}, rest...)
	if _, ok := p.Headers["x-first-death-reason"]; !ok {
		p.Headers["x-first-death-reason"] = reason
		p.Headers["x-first-death-queue"] = queueName
		p.Headers["x-first-death-exchange"] = m.Exchange
	}
	p.Headers["x-last-death-reason"] = reason
	p.Headers["x-last-death-queue"] = queueName
	p.Headers["x-last-death-exchange"] = m.Exchange
	p.Flags |= wire.FlagBasicHeaders
	p.Flags &^= wire.FlagBasicExpiration
	p.Expiration = ""
	return p.AppendTo(nil)
}

// withDeliveryCount returns props with the x-delivery-count header.
func withDeliveryCount(props []byte, n int) []byte {
	var p wire.BasicProperties
	_ = p.Decode(props)
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	p.Headers["x-delivery-count"] = int64(n)
	p.Flags |= wire.FlagBasicHeaders
	return p.AppendTo(nil)
}
