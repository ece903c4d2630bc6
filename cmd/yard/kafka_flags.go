package main

import (
	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/broker"
)

// addKafkaFlags adds the Kafka front end's settings to `yard serve` (called from
// addBrokerFlags).
func addKafkaFlags(f *pflag.FlagSet, cfg *broker.KafkaConfig) {
	f.BoolVar(&cfg.AutoCreateTopics, "kafka-auto-create-topics", cfg.AutoCreateTopics,
		"create unknown topics when a client asks for their metadata (Kafka's auto.create.topics.enable)")
	f.Int32Var(&cfg.DefaultPartitions, "kafka-default-partitions", cfg.DefaultPartitions,
		"partitions of auto-created topics and of topics created without a count (Kafka's num.partitions)")
	f.Int32Var(&cfg.MaxRequestBytes, "kafka-max-request-bytes", cfg.MaxRequestBytes,
		"largest request frame accepted; a larger one closes the connection (Kafka's socket.request.max.bytes)")
	f.IntVar(&cfg.MaxConnections, "kafka-max-connections", cfg.MaxConnections,
		"Kafka connections beyond this many (per listener) are closed at once")
	f.IntVar(&cfg.MaxConnectionsPerIP, "kafka-max-connections-per-ip", cfg.MaxConnectionsPerIP,
		"Kafka connections from one source address beyond this many are closed at once (Kafka's max.connections.per.ip; 0: no limit)")
	f.DurationVar(&cfg.RequestReadTimeout, "kafka-request-read-timeout", cfg.RequestReadTimeout,
		"once a request's first byte has arrived, all of it must arrive within this, or the connection is closed")
	f.Int64Var(&cfg.QueuedMaxRequestBytes, "kafka-queued-max-request-bytes", cfg.QueuedMaxRequestBytes,
		"memory all in-flight requests may reserve; reading pauses while it is spent (Kafka's queued.max.request.bytes)")
	f.StringVar(&cfg.AdvertisedHost, "kafka-advertised-host", cfg.AdvertisedHost,
		"host clients are told to connect to (default: the address each client connected to)")
	f.Int32Var(&cfg.AdvertisedPort, "kafka-advertised-port", cfg.AdvertisedPort,
		"port clients are told to connect to (default: the port each client connected to)")
	f.Int32Var(&cfg.OffsetsTopicPartitions, "kafka-offsets-topic-partitions", cfg.OffsetsTopicPartitions,
		"partitions of the internal topic __consumer_offsets when it is created; fixed afterwards (Kafka's offsets.topic.num.partitions)")
	f.Int32Var(&cfg.TransactionStatePartitions, "kafka-transaction-state-partitions", cfg.TransactionStatePartitions,
		"partitions of the internal topic __transaction_state when a cluster creates it; the same on every node, fixed afterwards (Kafka's transaction.state.log.num.partitions)")
	f.DurationVar(&cfg.OffsetsRetention, "kafka-offsets-retention", cfg.OffsetsRetention,
		"committed offsets of a group empty this long expire (Kafka's offsets.retention.minutes)")
	f.DurationVar(&cfg.MinSessionTimeout, "kafka-group-min-session-timeout", cfg.MinSessionTimeout,
		"shortest session timeout a group member may ask for (Kafka's group.min.session.timeout.ms)")
	f.DurationVar(&cfg.MaxSessionTimeout, "kafka-group-max-session-timeout", cfg.MaxSessionTimeout,
		"longest session timeout a group member may ask for (Kafka's group.max.session.timeout.ms)")
	f.DurationVar(&cfg.InitialRebalanceDelay, "kafka-group-initial-rebalance-delay", cfg.InitialRebalanceDelay,
		"the first rebalance of an empty classic group waits this long for more members to join (Kafka's group.initial.rebalance.delay.ms; 0: none)")
	f.DurationVar(&cfg.ReauthMaxAge, "kafka-connections-max-reauth", cfg.ReauthMaxAge,
		"a SASL session lasts this long; the client must re-authenticate before it ends (Kafka's connections.max.reauth.ms; 0: forever)")
	f.StringVar(&cfg.Authorizer, "kafka-authorizer", cfg.Authorizer,
		"Kafka authorizer (Kafka's authorizer.class.name): none (everything allowed) or acl (Kafka ACLs enforced; no matching ACL denies)")
	f.StringSliceVar(&cfg.SuperUsers, "super-users", cfg.SuperUsers,
		"principals allowed everything by the ACL authorizer, comma-separated: NAME or User:NAME (Kafka's super.users)")
	f.DurationVar(&cfg.TransactionMaxTimeout, "kafka-transaction-max-timeout", cfg.TransactionMaxTimeout,
		"longest transaction timeout a transactional producer may ask for (Kafka's transaction.max.timeout.ms)")
	f.Int16Var(&cfg.TransactionVersion, "kafka-transaction-version", cfg.TransactionVersion,
		"transaction.version feature level finalized (KIP-890): 2 lets Kafka 4 clients use transaction version 2 (implicit AddPartitionsToTxn, an epoch bump per transaction); 0 or 1 keep every client on version 1")
}
