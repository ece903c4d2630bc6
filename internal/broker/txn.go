package broker

// The transaction coordinator's view of the topics and of committed offsets.

import (
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

// txnService is the transaction coordinator the Kafka front end is given.
type txnService interface {
	txn.Service
	Close() error
}

// openTxn opens the transaction coordinator over streams and groups: on a cluster node one
// placed on the partitions of the replicated __transaction_state this node leads
// (coordinateTxns tells it which), else one over the node's own state log.
func (b *Broker) openTxn(streams *stream.Manager, groups *group.Coordinator) (txnService, error) {
	cfg := txn.Config{
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
	}
	if b.cfg.Peers != "" {
		cfg.Offsets = txn.MarkerOffsets(streams)
		pl, err := txn.NewPlaced(cfg, b.cfg.Kafka.TransactionStatePartitions)
		if err != nil {
			return nil, err
		}
		b.txns = pl
		return pl, nil
	}
	return txn.Open(cfg)
}
