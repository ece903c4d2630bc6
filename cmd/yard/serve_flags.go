package main

import (
	"github.com/spf13/pflag"

	"github.com/yardmq/yard/internal/broker"
)

// flagAliases maps an old flag name, still accepted, to the flag that replaced it. Both set
// the same value; applyEnvAndFile does not let one's environment variable or config key
// override the other given on the command line.
var flagAliases = map[string]string{
	"kafka-retention-check-interval": "retention-check-interval",
}

// addBrokerFlags adds the storage-wide settings and the front ends' own to `yard serve`.
func addBrokerFlags(f *pflag.FlagSet, cfg *broker.Config) {
	f.DurationVar(&cfg.RetentionCheckInterval, "retention-check-interval", cfg.RetentionCheckInterval,
		"how often time and size retention run on every log, Kafka topics and AMQP stream queues alike (Kafka's log.retention.check.interval.ms)")
	f.DurationVar(&cfg.RetentionCheckInterval, "kafka-retention-check-interval", cfg.RetentionCheckInterval,
		"old name of --retention-check-interval")
	_ = f.MarkDeprecated("kafka-retention-check-interval", "use --retention-check-interval")
	f.IntVar(&cfg.CleanerThreads, "log-cleaner-threads", cfg.CleanerThreads,
		"goroutines compacting the logs of cleanup.policy=compact topics (Kafka's log.cleaner.threads)")
	f.DurationVar(&cfg.CleanerBackoff, "log-cleaner-backoff", cfg.CleanerBackoff,
		"pause between the log cleaner's rounds over the compacted topics (Kafka's log.cleaner.backoff.ms)")
	f.Int64Var(&cfg.CleanerIOBytesPerSecond, "log-cleaner-io-max-bytes-per-second", cfg.CleanerIOBytesPerSecond,
		"bytes per second the log cleaners read and write together; negative: unlimited (Kafka's log.cleaner.io.max.bytes.per.second)")
	f.BoolVar(&cfg.KafkaJournal, "kafka-journal", cfg.KafkaJournal,
		"make appends to topic partitions durable through one node-wide journal: one fsync per group commit for all partitions (single node, --sync-policy always; see docs/performance.md)")
	addKafkaFlags(f, &cfg.Kafka)
	addAMQPFlags(f, &cfg.AMQP)
}

// aliasChanged reports whether a flag that names the same setting as name (flagAliases) was
// given on the command line.
func aliasChanged(fs *pflag.FlagSet, name string) bool {
	for old, cur := range flagAliases {
		var other string
		switch name {
		case old:
			other = cur
		case cur:
			other = old
		default:
			continue
		}
		if fl := fs.Lookup(other); fl != nil && fl.Changed {
			return true
		}
	}
	return false
}
