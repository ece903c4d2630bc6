package main

import (
	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/broker"
)

// addBrokerFlags adds the front ends' own settings to `yard serve`.
func addBrokerFlags(f *pflag.FlagSet, cfg *broker.Config) {
	addKafkaFlags(f, &cfg.Kafka)
	addAMQPFlags(f, &cfg.AMQP)
}
