package vhost

import (
	"errors"
	"fmt"
)

// Kinds of refusal. The domain knows no reply codes: the front end maps each kind to its
// protocol's (for AMQP, in the comment).
var (
	ErrAccessRefused = errors.New("access refused")      // 403 ACCESS_REFUSED
	ErrNotFound      = errors.New("not found")           // 404 NOT_FOUND
	ErrLocked        = errors.New("resource locked")     // 405 RESOURCE_LOCKED
	ErrPrecondition  = errors.New("precondition failed") // 406 PRECONDITION_FAILED
	ErrInvalid       = errors.New("command invalid")     // 503 COMMAND_INVALID (a connection error)
	ErrInternal      = errors.New("internal error")      // 541 INTERNAL_ERROR
)

// Error is a refusal: what kind, and the detail a client reads, in RabbitMQ's wording
// ("no queue 'q' in vhost '/'").
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string { return e.Detail }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
