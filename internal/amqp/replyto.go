package amqp

// Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to, advertised as the direct_reply_to
// capability): a requester consumes from the pseudo-queue "amq.rabbitmq.reply-to" in no-ack
// mode and publishes requests with reply_to = "amq.rabbitmq.reply-to"; yard rewrites that to
// a name unique to the requester's channel, so a responder's reply published to the default
// exchange with that name as routing key comes straight back. Here the name is a real,
// exclusive, auto-delete queue owned by the requester's connection.

import (
	"encoding/binary"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/vhost"
)

const directReplyTo = "amq.rabbitmq.reply-to"

// replyQueue returns the channel's reply-to queue, creating it on first use.
func (ch *channel) replyQueue(m *wire.BasicConsume) (*vhost.Queue, *amqpError) {
	if !m.NoAck {
		return nil, channelErr(wire.PreconditionFailed, m, "reply consumer cannot acknowledge")
	}
	if ch.replyTo != "" {
		return nil, channelErr(wire.PreconditionFailed, m, "reply consumer already set")
	}
	name := serverNamed(directReplyTo + ".")
	qs := ch.c.vh.AddExclusive(name, ch.c)
	ch.c.exclusive[name] = qs
	ch.replyTo = name
	return qs, nil
}

// rewriteReplyTo replaces reply_to = "amq.rabbitmq.reply-to" in encoded properties with the
// channel's reply queue. Properties without reply_to are returned untouched without decoding.
func (ch *channel) rewriteReplyTo(m wire.Method, props []byte) ([]byte, *amqpError) {
	if len(props) < 2 || binary.BigEndian.Uint16(props)&wire.FlagBasicReplyTo == 0 {
		return props, nil
	}
	var p wire.BasicProperties
	if err := p.Decode(props); err != nil {
		return nil, connErr(wire.FrameError, m, "cannot decode content properties: %v", err)
	}
	if p.ReplyTo != directReplyTo {
		return props, nil
	}
	if ch.replyTo == "" {
		return nil, channelErr(wire.PreconditionFailed, m, "fast reply consumer does not exist")
	}
	p.ReplyTo = ch.replyTo
	return p.AppendTo(nil), nil
}

// forgetReplyQueue ends the channel's direct reply-to once its consumer is cancelled (the
// queue, auto-delete, is gone): the channel may consume amq.rabbitmq.reply-to again, and gets
// a new name, as in RabbitMQ.
func (ch *channel) forgetReplyQueue(qs *vhost.Queue) {
	if ch.replyTo != "" && qs.Name() == ch.replyTo {
		delete(ch.c.exclusive, ch.replyTo)
		ch.replyTo = ""
	}
}
