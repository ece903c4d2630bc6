package amqp

// The AMQP message format as the domain (internal/vhost) and the queue engine need it:
// reading priority and expiration from message properties, the field tables arguments are
// kept as in the catalog, reading and rewriting headers (the domain's x-death), and
// x-delivery-count on redeliveries.

import (
	"strconv"

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

// AppendStreamRecord appends the one-record batch a message published to a stream queue
// becomes (streamrec.go).
func (Codec) AppendStreamRecord(dst []byte, tsMs int64, routingKey string, props, body []byte) []byte {
	return appendStreamBatch(dst, tsMs, routingKey, props, body)
}

// Headers returns the headers and the expiration of encoded basic properties. Properties
// that do not decode give what decoded before the fault, as a publish's would.
func (Codec) Headers(props []byte) (map[string]any, string, bool) {
	var p wire.BasicProperties
	_ = p.Decode(props)
	return p.Headers, p.Expiration, p.Flags&wire.FlagBasicExpiration != 0
}

// WithHeaders returns props with headers as their headers, without expiration if asked.
func (Codec) WithHeaders(props []byte, headers map[string]any, dropExpiration bool) []byte {
	var p wire.BasicProperties
	_ = p.Decode(props)
	p.Headers = headers
	p.Flags |= wire.FlagBasicHeaders
	if dropExpiration {
		p.Flags &^= wire.FlagBasicExpiration
		p.Expiration = ""
	}
	return p.AppendTo(nil)
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
