package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/auth"
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
	// Heartbeat is offered in connection.tune: 0 means amqp.DefaultHeartbeat,
	// amqp.HeartbeatNone offers none (the same meaning as amqp.Config's).
	Heartbeat  time.Duration
	FrameMax   uint32 // offered in connection.tune
	ChannelMax uint16 // offered in connection.tune
	// FrameReadTimeout: a frame whose first byte has arrived must arrive whole within this.
	FrameReadTimeout time.Duration
	// MaxConnections: connections beyond this many are closed at once; 0: no limit
	// (RabbitMQ's connection_max default).
	MaxConnections int
	// MaxConnectionsPerIP: connections from one source address beyond this many are closed
	// at once; 0: no limit.
	MaxConnectionsPerIP int
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
		FrameReadTimeout:   amqp.DefaultFrameReadTimeout,
	}
}

// openAMQP is called by Start when cfg.AMQPListen != "". It loads the durable topology,
// checks the queue stores against it (vhost.Stores.Check) and reopens every durable queue;
// serving AMQP starts later.
func (b *Broker) openAMQP() (*frontEnd, error) {
	c := b.cfg.AMQP
	topoStore, topo, err := catalog.OpenAMQP(b.layout.AMQPTopology())
	if err != nil {
		return nil, err
	}
	log := b.log.With("component", "amqp")
	stores := vhost.NewStores(b.layout, queue.LogStoreOptions{SyncPolicy: b.cfg.SyncPolicy, SyncInterval: b.cfg.SyncInterval, FileCache: b.files, SyncObserver: b.metrics}, log)
	if err := stores.Check(topo, topoStore.Existed()); err != nil {
		return nil, err
	}
	if !topoStore.Existed() {
		// From now on the file exists, so that its absence always means it was lost (a
		// queue's store is created before the topology naming it is saved).
		if err := topoStore.Save(topo); err != nil {
			return nil, err
		}
	}
	streams, releaseStreams, err := b.sharedStreams() // stream queues are Kafka topics
	if err != nil {
		return nil, err
	}
	var names []string
	for _, v := range b.users.Vhosts() {
		names = append(names, v.Name)
	}
	if len(names) == 0 {
		names = []string{"/"} // vhost.New's default would be the same; keep it explicit
	}
	hosts := vhost.New(vhost.Config{Names: names, Logger: log, Codec: amqp.Codec{}, QueueStore: stores.Open, Topology: topoStore, Streams: streams})
	// Vhosts added and deleted in the user store (CLI, admin API) are served at once.
	b.users.Watch(func(e auth.Event) {
		switch e.Kind {
		case "vhost-added":
			hosts.Add(e.Name)
		case "vhost-deleted":
			hosts.Delete(e.Name)
		}
	})
	if err := hosts.Restore(topo); err != nil {
		return nil, errors.Join(fmt.Errorf("cannot restore durable AMQP topology: %w", err), hosts.Close(), releaseStreams())
	}
	b.hosts = hosts
	srv := amqp.NewServer(amqp.Config{
		VHosts:                   hosts,
		Logger:                   log,
		DataDir:                  b.layout.Root(),
		Auth:                     b.users,
		Permissions:              b.users,
		Limits:                   b.users,
		LoopbackUsers:            []string{"guest"},
		ChannelMax:               c.ChannelMax,
		FrameMax:                 c.FrameMax,
		Heartbeat:                c.Heartbeat,
		MemoryHighWatermarkBytes: c.MemoryHighWatermarkBytes,
		DiskFreeLimitBytes:       c.DiskFreeLimitBytes,
		PaceBacklogBytes:         c.PaceBacklogBytes,
		MaxConnections:           c.MaxConnections,
		FrameReadTimeout:         c.FrameReadTimeout,
		MaxConnectionsPerIP:      c.MaxConnectionsPerIP,
		Registry:                 b.conns,
		MethodObserver:           b.metrics,
	})
	b.alarms = srv.Alarms
	b.amqp = srv
	return &frontEnd{
		serve: func(lns []boundListener) func(context.Context) error {
			done := make(chan error, len(lns))
			for _, l := range lns {
				go func() {
					if l.tls {
						done <- srv.ServeTLS(l.ln, b.tls)
					} else {
						done <- srv.Serve(l.ln)
					}
				}()
			}
			return func(ctx context.Context) error {
				defer releaseStreams()
				if err := srv.Shutdown(ctx); err != nil {
					return fmt.Errorf("cannot stop AMQP front end: %w", err)
				}
				var errs []error
				for _, l := range lns {
					l.ln.Close() // the broker owns ln: ends Serve even if it had not recorded ln yet
				}
				for range lns {
					if err := <-done; err != nil {
						errs = append(errs, fmt.Errorf("cannot stop AMQP front end: %w", err))
					}
				}
				return errors.Join(errs...)
			}
		},
		// Shutdown closes the queues of hosts (amqp.Config.VHosts) even if Serve never ran.
		abort: func() error { return errors.Join(srv.Shutdown(context.Background()), releaseStreams()) },
	}, nil
}
