package broker

import (
	"context"
	"net"
)

// KafkaConfig holds the Kafka front end's settings. (Placeholder until the front end lands.)
type KafkaConfig struct{}

// DefaultKafkaConfig is the embedded default.
func DefaultKafkaConfig() KafkaConfig { return KafkaConfig{} }

// startKafka is called by Start when the listener is enabled; ln is already listening.
// Placeholder: accepts and closes connections until the front end lands.
func (b *Broker) startKafka(ln net.Listener) (func(context.Context) error, error) {
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
