package amqp

// Stream records: an AMQP message published to a stream queue becomes one Kafka record (the
// same log Kafka clients read), and any Kafka record becomes an AMQP delivery.
//
// AMQP -> Kafka: one RecordBatch v2 per publish (magic 2, no compression, CreateTime = publish
// time, producer id -1), one record: key = the routing key (null if empty), value = the body,
// headers = every entry of the AMQP "headers" table whose value is text, bytes or a number
// (as UTF-8 text), then "amqp-properties" = the AMQP content-header property list exactly as
// the publisher sent it, so that AMQP consumers get every property back losslessly.
//
// Kafka -> AMQP: body = value, routing key = key, exchange "". Properties are the
// "amqp-properties" header if the record has one; otherwise the record's headers become the
// AMQP headers table (values as long strings) and its timestamp the timestamp property. Either
// way the headers table gets "x-stream-offset" (long-long), the record's offset within its
// partition, as RabbitMQ streams do, and "x-stream-partition" (long), the partition.

import (
	"strconv"

	"github.com/yardmq/yard/internal/amqp/wire"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
)

const amqpPropertiesHeader = "amqp-properties"

// appendStreamBatch appends a one-record batch for an AMQP publish.
func appendStreamBatch(dst []byte, tsMs int64, routingKey string, props, body []byte) []byte {
	var p wire.BasicProperties
	r := rb.Record{Value: body}
	if r.Value == nil {
		r.Value = []byte{}
	}
	if routingKey != "" {
		r.Key = []byte(routingKey)
	}
	if p.Decode(props) == nil {
		for k, v := range p.Headers {
			if s, ok := headerText(v); ok {
				r.Headers = append(r.Headers, rb.RecordHeader{Key: []byte(k), Value: []byte(s)})
			}
		}
	}
	if props == nil {
		props = []byte{}
	}
	r.Headers = append(r.Headers, rb.RecordHeader{Key: []byte(amqpPropertiesHeader), Value: props})
	start := len(dst)
	h := rb.NewHeader(1, tsMs)
	dst = rb.AppendHeader(dst, &h)
	return rb.Finish(r.AppendTo(dst), start)
}

func headerText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	if n, ok := intArg(v); ok {
		return strconv.Itoa(n), true
	}
	return "", false
}

// deliveryProperties builds the AMQP property list for a record of the given partition.
func deliveryProperties(r *stream.Record, partition int32) []byte {
	var p wire.BasicProperties
	decoded := false
	for _, h := range r.Headers {
		if string(h.Key) == amqpPropertiesHeader && p.Decode(h.Value) == nil {
			decoded = true
			break
		}
	}
	if !decoded {
		p = wire.BasicProperties{}
		if len(r.Headers) > 0 {
			p.Headers = wire.Table{}
			for _, h := range r.Headers {
				p.Headers[string(h.Key)] = string(h.Value)
			}
		}
		if r.Timestamp >= 0 {
			p.Timestamp = uint64(r.Timestamp / 1000)
			p.Flags |= wire.FlagBasicTimestamp
		}
	}
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	p.Headers["x-stream-offset"] = r.Offset
	p.Headers["x-stream-partition"] = partition
	p.Flags |= wire.FlagBasicHeaders
	return p.AppendTo(nil)
}
