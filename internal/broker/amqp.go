package broker

import (
	"context"
	"net"
)

// AMQPConfig holds the AMQP front end's settings. (Placeholder until the front end lands.)
type AMQPConfig struct{}

// DefaultAMQPConfig is the embedded default.
func DefaultAMQPConfig() AMQPConfig { return AMQPConfig{} }

// startAMQP is called by Start when the listener is enabled; ln is already listening.
// Placeholder: accepts and closes connections until the front end lands.
func (b *Broker) startAMQP(ln net.Listener) (func(context.Context) error, error) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return func(context.Context) error { return ln.Close() }, nil
}
