// Package wire is yard's AMQP 0-9-1 codec.
//
// Most of it is generated (methods_gen.go) from RabbitMQ's machine-readable specification in
// spec/, so that every class, method and content-header property comes from one declarative
// source: each method is a struct with an ID constant (class<<16 | method), an AppendTo encoder
// that appends the method-frame payload to a caller's buffer, and a decoder. Consecutive bit
// arguments share one octet, least significant bit first, as the specification requires.
//
// The hand-written parts are the primitives (codec.go), field tables and arrays with every
// field type RabbitMQ uses (table.go), and frames (frame.go): the frame reader enforces the
// negotiated frame_max and the frame-end octet; the appenders build method, content-header,
// body and heartbeat frames in place.
//
// Decoders never panic and never read past their input: a short or malformed input is an error.
package wire

//go:generate go run ./gen -spec spec/amqp-rabbitmq-0.9.1.json -out methods_gen.go
