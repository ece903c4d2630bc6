package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/broker"
)

// addAMQPFlags registers the AMQP front end's `yard serve` flags (called from addBrokerFlags).
func addAMQPFlags(f *pflag.FlagSet, cfg *broker.AMQPConfig) {
	f.StringVar(&cfg.DefaultUser, "amqp-default-user", cfg.DefaultUser,
		"AMQP user created at start (\"guest\" may log in only from loopback, as in RabbitMQ)")
	f.StringVar(&cfg.DefaultPass, "amqp-default-pass", cfg.DefaultPass,
		"password of --amqp-default-user (visible to other local users in the process list: prefer YARD_AMQP_DEFAULT_PASS or --amqp-default-pass-file)")
	f.String("amqp-default-pass-file", "",
		"file whose content (one trailing newline dropped) is the password of --amqp-default-user")
	f.Uint64Var(&cfg.MemoryHighWatermarkBytes, "amqp-memory-high-watermark-bytes", cfg.MemoryHighWatermarkBytes,
		"block AMQP publishers (connection.blocked) above this much memory in use; 0: 40% of physical memory")
	f.Uint64Var(&cfg.DiskFreeLimitBytes, "amqp-disk-free-limit-bytes", cfg.DiskFreeLimitBytes,
		"block AMQP publishers when the data dir's file system has less free space than this")
	f.Int64Var(&cfg.PaceBacklogBytes, "amqp-pace-backlog-bytes", cfg.PaceBacklogBytes,
		"pace the publishers of a queue whose consumers drain over 1,000 msgs/s but let its ready backlog grow past this many bytes (0: never)")
	f.Var(heartbeatFlag{&cfg.Heartbeat}, "amqp-heartbeat", "heartbeat interval offered to AMQP clients (0: none)")
	f.Uint32Var(&cfg.FrameMax, "amqp-frame-max", cfg.FrameMax, "largest AMQP frame in bytes offered to clients")
	f.Uint16Var(&cfg.ChannelMax, "amqp-channel-max", cfg.ChannelMax, "most AMQP channels per connection")
	f.DurationVar(&cfg.FrameReadTimeout, "amqp-frame-read-timeout", cfg.FrameReadTimeout,
		"once an AMQP frame's first byte has arrived, all of it must arrive within this, or the connection is dropped")
	f.IntVar(&cfg.MaxConnections, "amqp-max-connections", cfg.MaxConnections,
		"AMQP connections beyond this many (per listener) are closed at once (0: no limit, as RabbitMQ's connection_max)")
	f.IntVar(&cfg.MaxConnectionsPerIP, "amqp-max-connections-per-ip", cfg.MaxConnectionsPerIP,
		"AMQP connections from one source address beyond this many are closed at once (0: no limit)")
}

// applyAMQPPassFile reads --amqp-default-pass-file (set by flag, YARD_AMQP_DEFAULT_PASS_FILE or
// the config file; applyEnvAndFile has run) into cfg.DefaultPass. Giving both a password and a
// password file is refused rather than guessing which one was meant.
func applyAMQPPassFile(f *pflag.FlagSet, cfg *broker.AMQPConfig) error {
	path, _ := f.GetString("amqp-default-pass-file")
	if path == "" {
		return nil
	}
	if fl := f.Lookup("amqp-default-pass"); fl.Changed || fl.Value.String() != fl.DefValue {
		return fmt.Errorf("cannot take the AMQP default password from both --amqp-default-pass and --amqp-default-pass-file; give one")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read --amqp-default-pass-file: %w", err)
	}
	pass := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if pass == "" {
		return fmt.Errorf("cannot use --amqp-default-pass-file %s: it is empty", path)
	}
	cfg.DefaultPass = pass
	return nil
}

// heartbeatFlag is --amqp-heartbeat: a duration where 0 means "offer none", as RabbitMQ's
// heartbeat setting; it stores amqp.HeartbeatNone for that, since 0 in the config structs
// means the default.
type heartbeatFlag struct{ d *time.Duration }

func (h heartbeatFlag) String() string {
	if h.d == nil || *h.d == amqp.HeartbeatNone {
		return "0s"
	}
	return h.d.String()
}

func (h heartbeatFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	switch {
	case d < 0:
		return fmt.Errorf("heartbeat %s is negative", s)
	case d == 0:
		d = amqp.HeartbeatNone
	}
	*h.d = d
	return nil
}

func (heartbeatFlag) Type() string { return "duration" }
