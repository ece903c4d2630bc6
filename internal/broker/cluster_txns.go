package broker

// Transactions on a cluster node: __transaction_state is a replicated internal topic (one
// Raft group per partition, every node a voter), and the transaction coordinator of each
// partition's transactional IDs is that partition's leader (internal/txn placement.go).

import (
	"context"

	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

// coordinateTxns creates the replicated __transaction_state once a client looks for a
// transaction coordinator (as Kafka, on first use), then, until ctx ends, tells the
// transaction coordinator which of its partitions this node leads.
func (b *Broker) coordinateTxns(ctx context.Context, streams *stream.Manager) {
	pl := b.txns
	if pl == nil {
		return // no Kafka front end on this node
	}
	b.followCoordinatorTopic(ctx, streams, coordinatorTopic{
		name: txn.StateTopic, partitions: pl.Partitions(),
		configs: txn.StateTopicConfigs(), wanted: pl.StateTopicWanted(),
		flag: "--kafka-transaction-state-partitions", coordinates: "transaction",
	}, func(p *stream.Partition, leads bool) {
		pl.SetLeader(p.Index, leads, p, func() uint64 { return uint64(p.LeaderEpoch()) })
	})
}
