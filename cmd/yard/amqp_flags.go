package main

import (
	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/broker"
)

// addAMQPFlags registers the AMQP front end's `yard serve` flags (called from addBrokerFlags).
func addAMQPFlags(f *pflag.FlagSet, cfg *broker.AMQPConfig) {
	f.StringVar(&cfg.DefaultUser, "amqp-default-user", cfg.DefaultUser,
		"AMQP user created at start (\"guest\" may log in only from loopback, as in RabbitMQ)")
	f.StringVar(&cfg.DefaultPass, "amqp-default-pass", cfg.DefaultPass, "password of --amqp-default-user")
	f.Uint64Var(&cfg.MemoryHighWatermarkBytes, "amqp-memory-high-watermark-bytes", cfg.MemoryHighWatermarkBytes,
		"block AMQP publishers (connection.blocked) above this much memory in use; 0: 40% of physical memory")
	f.Uint64Var(&cfg.DiskFreeLimitBytes, "amqp-disk-free-limit-bytes", cfg.DiskFreeLimitBytes,
		"block AMQP publishers when the data dir's file system has less free space than this")
	f.Int64Var(&cfg.PaceBacklogBytes, "amqp-pace-backlog-bytes", cfg.PaceBacklogBytes,
		"pace the publishers of a queue whose consumers drain over 1,000 msgs/s but let its ready backlog grow past this many bytes (0: never)")
	f.DurationVar(&cfg.Heartbeat, "amqp-heartbeat", cfg.Heartbeat, "heartbeat interval offered to AMQP clients (0: none)")
	f.Uint32Var(&cfg.FrameMax, "amqp-frame-max", cfg.FrameMax, "largest AMQP frame in bytes offered to clients")
	f.Uint16Var(&cfg.ChannelMax, "amqp-channel-max", cfg.ChannelMax, "most AMQP channels per connection")
}
