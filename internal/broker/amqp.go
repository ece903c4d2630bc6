package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/queue"
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
	srv := amqp.NewServer(amqp.Config{
		Streams:                  streams,
		Topology:                 topoStore,
		QueueStore:               b.openQueueStore,
		Logger:                   b.log.With("component", "amqp"),
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
	if err := srv.Restore(topo); err != nil {
		releaseStreams()
		return nil, fmt.Errorf("cannot restore durable AMQP topology: %w", err)
	}
	if err := b.removeOrphanQueueDirs(topo); err != nil {
		releaseStreams()
		return nil, err
	}
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

// openQueueStore gives durable (non-exclusive) queues a store on the log engine in
// <data-dir>/queues/<vhost>/<queue>/ (names escaped), and every other queue none.
func (b *Broker) openQueueStore(vhost, name string, opts queue.Options) (queue.Store, error) {
	if !opts.Durable || opts.Exclusive {
		return queue.MemoryStore{}, nil
	}
	dir := filepath.Join(b.queuesDir(), escapeName(vhost), escapeName(name))
	return queue.OpenLogStore(dir, queue.LogStoreOptions{SyncPolicy: b.cfg.SyncPolicy, SyncInterval: b.cfg.SyncInterval})
}

// queuesDir holds one directory per vhost, and in it one per durable queue (names escaped).
func (b *Broker) queuesDir() string { return filepath.Join(b.cfg.DataDir, "queues") }

// removeOrphanQueueDirs deletes the queue stores that no durable queue of the topology owns.
// A crash between creating a new queue's store and saving the topology leaves one behind
// (and so does a crash in the middle of deleting a queue); left alone, its old messages
// would reappear in the next queue declared under that name.
func (b *Broker) removeOrphanQueueDirs(topo catalog.AMQPTopology) error {
	owned := map[string]bool{}
	for _, q := range topo.Queues {
		owned[filepath.Join(escapeName(q.VHost), escapeName(q.Name))] = true
	}
	root := b.queuesDir()
	vhosts, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot list queue stores: %w", err)
	}
	for _, vh := range vhosts {
		queues, err := os.ReadDir(filepath.Join(root, vh.Name()))
		if err != nil {
			return fmt.Errorf("cannot list queue stores: %w", err)
		}
		for _, q := range queues {
			rel := filepath.Join(vh.Name(), q.Name())
			if owned[rel] {
				continue
			}
			b.log.Warn("removing the store of a queue that is not in the topology (left by a crash)", "dir", filepath.Join(root, rel))
			if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
				return fmt.Errorf("cannot remove orphan queue store: %w", err)
			}
		}
	}
	return nil
}

// escapeName turns any AMQP name into one safe path element: bytes other than ASCII letters,
// digits, '-' and '_' become %XX.
func escapeName(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	if sb.Len() == 0 {
		return "%"
	}
	return sb.String()
}
