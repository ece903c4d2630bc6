package amqp

import (
	"errors"
	"fmt"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/vhost"
)

// amqpError is a protocol error: a reply code and text sent to the client in channel.close
// (a channel error) or connection.close (a connection error). Any other Go error returned by a
// handler drops the connection without a close handshake.
type amqpError struct {
	code     uint16
	text     string // full reply text, "NOT_FOUND - no queue 'q' in vhost '/'"
	methodID uint32 // the method that failed, 0 if none
	conn     bool   // close the connection, not just the channel
}

func (e *amqpError) Error() string { return e.text }

// channelErr builds a channel error in RabbitMQ's wording: the code's name, " - ", the detail.
// Codes the specification classes as hard errors become connection errors.
func channelErr(code uint16, m wire.Method, format string, args ...any) *amqpError {
	e := &amqpError{code: code, text: wire.ReplyName(code) + " - " + fmt.Sprintf(format, args...)}
	if m != nil {
		e.methodID = m.ID()
	}
	e.conn = wire.IsHardError(code)
	return e
}

// connErr builds a connection error whatever the code's class (403 on login, for instance).
func connErr(code uint16, m wire.Method, format string, args ...any) *amqpError {
	e := channelErr(code, m, format, args...)
	e.conn = true
	return e
}

// errWithID is connErr for failures found before a method is decoded (frame errors).
func errWithID(code uint16, id uint32, format string, args ...any) *amqpError {
	e := connErr(code, nil, format, args...)
	e.methodID = id
	return e
}

func closeFor(e *amqpError) (classID, methodID uint16) {
	return wire.ClassOf(e.methodID), wire.MethodOf(e.methodID)
}

// domainCodes maps the domain's kinds of refusal (internal/vhost) to reply codes.
var domainCodes = []struct {
	kind error
	code uint16
}{
	{vhost.ErrAccessRefused, wire.AccessRefused},
	{vhost.ErrNotFound, wire.NotFound},
	{vhost.ErrLocked, wire.ResourceLocked},
	{vhost.ErrPrecondition, wire.PreconditionFailed},
	{vhost.ErrInvalid, wire.CommandInvalid},
	{vhost.ErrInternal, wire.InternalError},
}

// refused turns an error from the domain into the protocol error it stands for: a refusal
// (*vhost.Error) becomes its kind's reply code with the domain's text; anything else is an
// internal error.
func refused(m wire.Method, err error) *amqpError {
	var e *vhost.Error
	if errors.As(err, &e) {
		for _, dc := range domainCodes {
			if e.Kind == dc.kind {
				return channelErr(dc.code, m, "%s", e.Detail)
			}
		}
	}
	return channelErr(wire.InternalError, m, "%v", err)
}
