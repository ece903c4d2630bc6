package broker

// The transaction coordinator's view of the topics and of committed offsets.

import (
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

// openTxn opens the transaction coordinator over streams and groups.
func (b *Broker) openTxn(streams *stream.Manager, groups *group.Coordinator) (*txn.Coordinator, error) {
	return txn.Open(txn.Config{
		Dir:                b.layout.TransactionState(),
		LogOptions:         log.Options{SyncPolicy: b.cfg.SyncPolicy, SyncInterval: b.cfg.SyncInterval, FileCache: b.files},
		Partitions:         txn.StreamPartitions(streams),
		Offsets:            txn.GroupOffsets(groups),
		AllocateProducerID: streams.AllocateProducerID,
		CoordinatorEpoch:   streams.Node().LeaderEpoch(nil),
		MaxTimeout:         b.cfg.Kafka.TransactionMaxTimeout,
		AbortCheckInterval: b.cfg.Kafka.TransactionAbortCheckInterval,
		TransactionVersion: b.cfg.Kafka.TransactionVersion,
		Logger:             b.log.With("component", "txn"),
	})
}
