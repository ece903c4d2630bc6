package broker

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// AMQPConfig holds the AMQP front end's settings (flags --amqp-*).
type AMQPConfig struct {
	DefaultUser string // created at start; may log in only from loopback if it is "guest"
	DefaultPass string
	// MemoryHighWatermarkBytes blocks publishers (connection.blocked) above this much memory
	// in use; 0 means 40% of physical memory, as RabbitMQ's default.
	MemoryHighWatermarkBytes uint64
	// DiskFreeLimitBytes blocks publishers when the data dir's file system has less free space.
	DiskFreeLimitBytes uint64
	// PaceBacklogBytes paces the publishers of a queue whose fast consumers let its backlog
	// grow past this many bytes; 0 never paces.
	PaceBacklogBytes int64
	Heartbeat        time.Duration // offered in connection.tune
	FrameMax         uint32        // offered in connection.tune
	ChannelMax       uint16        // offered in connection.tune
}

// DefaultAMQPConfig is RabbitMQ's defaults: guest/guest, heartbeat 60 s, frame_max 128 KiB,
// channel_max 2047, 50 MB disk free limit.
func DefaultAMQPConfig() AMQPConfig {
	return AMQPConfig{
		DefaultUser:        "guest",
		DefaultPass:        "guest",
		DiskFreeLimitBytes: amqp.DefaultDiskFreeLimit,
		PaceBacklogBytes:   amqp.DefaultPaceBacklogBytes,
		Heartbeat:          amqp.DefaultHeartbeat,
		FrameMax:           amqp.DefaultFrameMax,
		ChannelMax:         amqp.DefaultChannelMax,
	}
}

// startAMQP is called by Start when cfg.AMQPListen != "". ln is already listening.
func (b *Broker) startAMQP(ln net.Listener) (stop func(ctx context.Context) error, err error) {
	c := b.cfg.AMQP
	users := map[string]string{}
	if c.DefaultUser != "" {
		users[c.DefaultUser] = c.DefaultPass
	}
	heartbeat := c.Heartbeat
	if heartbeat == 0 {
		heartbeat = -1 // 0 from the flag means "offer none"; amqp.Config uses 0 for the default
	}
	topoStore, topo, err := catalog.OpenAMQP(b.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	streams, releaseStreams, err := b.sharedStreams() // stream queues are Kafka topics
	if err != nil {
		return nil, err
	}
	log := b.log.With("component", "amqp")
	stores := vhost.Stores{
		Root:    filepath.Join(b.cfg.DataDir, "queues"),
		Options: queue.LogStoreOptions{SyncPolicy: b.cfg.SyncPolicy, SyncInterval: b.cfg.SyncInterval},
		Logger:  log,
	}
	hosts := vhost.New(vhost.Config{Logger: log, Codec: amqp.Codec{}, QueueStore: stores.Open, Topology: topoStore, Streams: streams})
	if err := hosts.Restore(topo); err != nil {
		hosts.Close()
		releaseStreams()
		return nil, fmt.Errorf("cannot restore durable AMQP topology: %w", err)
	}
	if err := stores.RemoveOrphans(topo); err != nil {
		hosts.Close()
		releaseStreams()
		return nil, err
	}
	srv := amqp.NewServer(amqp.Config{
		VHosts:                   hosts,
		Logger:                   log,
		DataDir:                  b.cfg.DataDir,
		Users:                    users,
		LoopbackUsers:            []string{"guest"},
		ChannelMax:               c.ChannelMax,
		FrameMax:                 c.FrameMax,
		Heartbeat:                heartbeat,
		MemoryHighWatermarkBytes: c.MemoryHighWatermarkBytes,
		DiskFreeLimitBytes:       c.DiskFreeLimitBytes,
		PaceBacklogBytes:         c.PaceBacklogBytes,
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return func(ctx context.Context) error {
		defer releaseStreams()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("cannot stop AMQP front end: %w", err)
		}
		if err := <-done; err != nil {
			return fmt.Errorf("cannot stop AMQP front end: %w", err)
		}
		return nil
	}, nil
}
