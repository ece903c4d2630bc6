package amqp

import (
	"fmt"

	"github.com/yardmq/yard/internal/amqp/wire"
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
