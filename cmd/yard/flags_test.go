package main

import (
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/broker"
)

// TestHeartbeatFlag: --amqp-heartbeat 0 means "offer none" (as RabbitMQ's setting), which the
// config structs spell amqp.HeartbeatNone; their 0 means the default.
func TestHeartbeatFlag(t *testing.T) {
	cfg := broker.DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addBrokerFlags(fs, &cfg)
	if got := fs.Lookup("amqp-heartbeat").DefValue; got != "1m0s" {
		t.Fatalf("default shown as %q", got)
	}
	if err := fs.Parse([]string{"--amqp-heartbeat", "0"}); err != nil {
		t.Fatal(err)
	}
	if cfg.AMQP.Heartbeat != amqp.HeartbeatNone {
		t.Fatalf("--amqp-heartbeat 0 gave %v, want HeartbeatNone", cfg.AMQP.Heartbeat)
	}
	if err := fs.Parse([]string{"--amqp-heartbeat", "5s"}); err != nil || cfg.AMQP.Heartbeat != 5*time.Second {
		t.Fatalf("--amqp-heartbeat 5s gave %v (%v)", cfg.AMQP.Heartbeat, err)
	}
	if err := fs.Parse([]string{"--amqp-heartbeat", "-1s"}); err == nil {
		t.Fatal("negative heartbeat accepted")
	}
}

// TestRetentionCheckIntervalAlias: the old --kafka-retention-check-interval still sets the
// storage-wide interval, and its environment variable does not override the new flag given
// on the command line.
func TestRetentionCheckIntervalAlias(t *testing.T) {
	newFlags := func(args ...string) *broker.Config {
		cfg := broker.DefaultConfig()
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		fs.String("config", "", "")
		addBrokerFlags(fs, &cfg)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnvAndFile(fs, ""); err != nil {
			t.Fatal(err)
		}
		return &cfg
	}
	if cfg := newFlags("--kafka-retention-check-interval", "7s"); cfg.RetentionCheckInterval != 7*time.Second {
		t.Fatalf("old flag: %v", cfg.RetentionCheckInterval)
	}
	t.Setenv("YARD_KAFKA_RETENTION_CHECK_INTERVAL", "9s")
	if cfg := newFlags("--retention-check-interval", "3s"); cfg.RetentionCheckInterval != 3*time.Second {
		t.Fatalf("old name's environment variable overrode the new flag: %v", cfg.RetentionCheckInterval)
	}
	if cfg := newFlags(); cfg.RetentionCheckInterval != 9*time.Second {
		t.Fatalf("old name's environment variable ignored: %v", cfg.RetentionCheckInterval)
	}
}
