package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yardmq/yard/internal/auth/acl"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/kafka"
	"github.com/yardmq/yard/internal/txn"
)

// KafkaConfig holds the Kafka front end's settings (flags in cmd/yard/kafka_flags.go).
type KafkaConfig struct {
	// AutoCreateTopics creates unknown topics on Metadata requests (Kafka's
	// auto.create.topics.enable, on by default).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and of CreateTopics
	// requests that ask for the default (Kafka's num.partitions).
	DefaultPartitions int32
	// MaxRequestBytes: a request frame larger than this closes the connection
	// (socket.request.max.bytes).
	MaxRequestBytes int32
	// MaxConnections: connections beyond this many are closed at once.
	MaxConnections int
	// MaxConnectionsPerIP: connections from one source address beyond this many are closed
	// at once (max.connections.per.ip); 0: no limit.
	MaxConnectionsPerIP int
	// RequestReadTimeout: once a request's first byte has arrived, all of it must arrive
	// within this, or the connection is closed.
	RequestReadTimeout time.Duration
	// QueuedMaxRequestBytes bounds the memory in-flight requests reserve; reading pauses
	// while it is spent (queued.max.request.bytes).
	QueuedMaxRequestBytes int64
	// AdvertisedHost/AdvertisedPort override the address Metadata gives clients (default: the
	// address each client connected to).
	AdvertisedHost string
	AdvertisedPort int32
	// OffsetsTopicPartitions is the partition count __consumer_offsets is created with
	// (offsets.topic.num.partitions); an existing topic keeps its count.
	OffsetsTopicPartitions int32
	// TransactionStatePartitions is the partition count __transaction_state is created with
	// on a cluster (transaction.state.log.num.partitions); the same on every node.
	TransactionStatePartitions int32
	// OffsetsRetention: committed offsets of a group that has been empty this long expire
	// (offsets.retention.minutes).
	OffsetsRetention time.Duration
	// MinSessionTimeout/MaxSessionTimeout bound the session timeout a classic group member may
	// ask for (group.min.session.timeout.ms, group.max.session.timeout.ms).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay: the first rebalance of an empty classic group waits this long
	// for more members (group.initial.rebalance.delay.ms); 0: none.
	InitialRebalanceDelay time.Duration
	// TransactionMaxTimeout bounds the timeout a transactional producer may ask for
	// (transaction.max.timeout.ms); TransactionAbortCheckInterval is how often timed-out
	// transactions are looked for and aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	TransactionMaxTimeout         time.Duration
	TransactionAbortCheckInterval time.Duration
	// TransactionVersion is the transaction.version feature level finalized (KIP-890): 2
	// lets Kafka 4 clients use transaction version 2; 0 or 1 keep them on version 1.
	TransactionVersion int16
	// ReauthMaxAge is connections.max.reauth.ms (KIP-368); 0: sessions never expire.
	ReauthMaxAge time.Duration
	// Authorizer is "none" (or ""): everything allowed, or "acl": Kafka ACLs
	// (internal/auth/acl) enforced, as Kafka's authorizer.class.name.
	Authorizer string
	// SuperUsers may do everything under the ACL authorizer (super.users): user names or
	// principals.
	SuperUsers []string
}

// DefaultKafkaConfig is the embedded default (Kafka's defaults).
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{
		AutoCreateTopics:           true,
		DefaultPartitions:          kafka.DefaultPartitions,
		MaxRequestBytes:            kafka.DefaultMaxRequestBytes,
		MaxConnections:             kafka.DefaultMaxConnections,
		RequestReadTimeout:         kafka.DefaultRequestReadTimeout,
		QueuedMaxRequestBytes:      kafka.DefaultQueuedMaxRequestBytes,
		OffsetsTopicPartitions:     group.DefaultOffsetsTopicPartitions,
		TransactionStatePartitions: txn.DefaultStatePartitions,
		OffsetsRetention:           group.DefaultOffsetsRetention,
		MinSessionTimeout:          group.DefaultMinSessionTimeout,
		MaxSessionTimeout:          group.DefaultMaxSessionTimeout,
		InitialRebalanceDelay:      group.DefaultInitialRebalanceDelay,

		TransactionMaxTimeout:         txn.DefaultMaxTimeout,
		TransactionAbortCheckInterval: txn.DefaultAbortCheckInterval,
		TransactionVersion:            txn.MaxTransactionVersion,
	}
}

// openKafka is called by Start when cfg.KafkaListen != "". It opens the catalog, every topic's
// logs and the committed-offsets log; serving the Kafka protocol starts later.
//
// The catalog and topic manager are shared with the AMQP front end (stream queues are
// topics): see sharedStreams.
func (b *Broker) openKafka() (*frontEnd, error) {
	kc := b.cfg.Kafka
	var authz *acl.Authorizer
	switch kc.Authorizer {
	case "", "none":
	case "acl":
		var err error
		if authz, err = acl.Open(b.layout.KafkaACLs(), kc.SuperUsers); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("cannot start kafka: unknown --kafka-authorizer %q (want none or acl)", kc.Authorizer)
	}
	streams, releaseStreams, err := b.sharedStreams() // shared with AMQP stream queues
	if err != nil {
		return nil, err
	}
	gcfg := group.Config{
		Topics: group.StreamTopics(streams),
		Logger: b.log.With("component", "group"),

		OffsetsRetention:  kc.OffsetsRetention,
		MinSessionTimeout: kc.MinSessionTimeout,
		MaxSessionTimeout: kc.MaxSessionTimeout,
		// group.Config's zero is its default; no delay is negative there.
		InitialRebalanceDelay: cmp.Or(kc.InitialRebalanceDelay, -1),
	}
	if b.cfg.Peers != "" {
		// A cluster node: __consumer_offsets is created through the metadata group and each
		// partition's leader coordinates its groups (openCluster, coordinateGroups).
		gcfg.ClusterPartitions = kc.OffsetsTopicPartitions
	} else {
		offsetsParts, err := group.StreamOffsetsPartitions(streams, kc.OffsetsTopicPartitions)
		if err != nil {
			releaseStreams()
			return nil, err
		}
		if n := int32(len(offsetsParts)); n != kc.OffsetsTopicPartitions {
			b.log.Warn("the offsets topic keeps the partition count it was created with", "topic", group.OffsetsTopic,
				"partitions", n, "configured", kc.OffsetsTopicPartitions)
		}
		gcfg.OffsetsPartitions, gcfg.LegacyOffsetsDir, gcfg.JournalDir = offsetsParts, b.layout.ConsumerOffsets(), b.layout.OffsetsJournal()
		gcfg.SyncPolicy = b.cfg.SyncPolicy
	}
	groups, err := group.Open(gcfg)
	if err != nil {
		releaseStreams()
		return nil, err
	}
	txc, err := b.openTxn(streams, groups)
	if err != nil {
		groups.Close()
		releaseStreams()
		return nil, err
	}
	srv, err := kafka.NewServer(kafka.Config{
		Streams:               streams,
		Groups:                groups,
		Txn:                   txc,
		Logger:                b.log.With("component", "kafka"),
		ClusterID:             b.ClusterID(),
		AdvertisedHost:        kc.AdvertisedHost,
		AdvertisedPort:        kc.AdvertisedPort,
		MaxRequestBytes:       kc.MaxRequestBytes,
		MaxConnections:        kc.MaxConnections,
		MaxConnectionsPerIP:   kc.MaxConnectionsPerIP,
		RequestReadTimeout:    kc.RequestReadTimeout,
		QueuedMaxRequestBytes: kc.QueuedMaxRequestBytes,
		Registry:              b.conns,
		RequestObserver:       b.metrics,
		TopicObserver:         b.metrics,
		AutoCreateTopics:      kc.AutoCreateTopics,
		DefaultPartitions:     kc.DefaultPartitions,
		TLS:                   b.tls,
		Users:                 b.users,
		ReauthMaxAge:          kc.ReauthMaxAge,
		AllowUnauthenticated:  b.cfg.AllowUnauthenticated,
		Authorizer:            authz,
	})
	if err != nil {
		txc.Close()
		groups.Close()
		releaseStreams()
		return nil, err
	}
	b.groups = groups
	b.authz = authz
	return &frontEnd{
		serve: func(lns []boundListener) func(context.Context) error {
			specs, _ := kafka.ParseListeners(b.cfg.KafkaListen) // parsed by Start: same order as lns
			served := make(chan error, len(lns))
			for i, l := range lns {
				go func() { served <- srv.ServeListener(l.ln, specs[i], i == 0) }()
			}
			return func(ctx context.Context) error {
				var errs []error
				if err := srv.Shutdown(ctx); err != nil {
					errs = append(errs, err)
				}
				// The broker owns ln: closing it here ends Serve even if Shutdown ran before
				// Serve had recorded ln (Serve returns nil once Shutdown has run).
				for _, l := range lns {
					l.ln.Close()
				}
				for range lns {
					if err := <-served; err != nil {
						errs = append(errs, err)
					}
				}
				if err := txc.Close(); err != nil {
					errs = append(errs, fmt.Errorf("cannot close transaction coordinator: %w", err))
				}
				if err := groups.Close(); err != nil {
					errs = append(errs, fmt.Errorf("cannot close group coordinator: %w", err))
				}
				if err := releaseStreams(); err != nil {
					errs = append(errs, err)
				}
				return errors.Join(errs...)
			}
		},
		abort: func() error {
			return errors.Join(srv.Shutdown(context.Background()), txc.Close(), groups.Close(), releaseStreams())
		},
	}, nil
}
