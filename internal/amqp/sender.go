package amqp

// RabbitMQ's checks of a message's own properties before it is routed: the expiration
// property, and sender-selected distribution (CC and BCC headers: more routing keys; BCC
// never reaches a consumer). The rules are the domain's (internal/vhost).

import (
	"encoding/binary"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/vhost"
)

// checkContent refuses an expiration that is not a non-negative integer string (406, as
// RabbitMQ) and reads CC and BCC into p.extra, removing BCC from the properties. Properties
// without an expiration or headers are not decoded.
func (ch *channel) checkContent(p *publishing) *amqpError {
	if len(p.props) < 2 {
		return nil
	}
	flags := binary.BigEndian.Uint16(p.props)
	if flags&(wire.FlagBasicExpiration|wire.FlagBasicHeaders) == 0 {
		return nil
	}
	var props wire.BasicProperties
	if err := props.Decode(p.props); err != nil {
		return connErr(wire.FrameError, p.m, "cannot decode content header properties: %v", err)
	}
	if flags&wire.FlagBasicExpiration != 0 {
		if err := vhost.CheckExpiration(props.Expiration); err != nil {
			return refused(p.m, err)
		}
	}
	if len(props.Headers) == 0 {
		return nil
	}
	extra, bcc, err := vhost.SenderRoutes(props.Headers)
	if err != nil {
		return refused(p.m, err)
	}
	p.extra = extra
	if bcc {
		delete(props.Headers, "BCC")
		p.props = props.AppendTo(nil)
	}
	return nil
}
