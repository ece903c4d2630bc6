package broker

// Transactions on a cluster node: __transaction_state is a replicated internal topic (one
// Raft group per partition, every node a voter), and the transaction coordinator of each
// partition's transactional IDs is that partition's leader (internal/txn placement.go).

import (
	"context"
	"time"

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
	want := pl.Partitions()
	self := streams.Node().ID()
	tick := time.NewTicker(leadershipPollMs * time.Millisecond)
	defer tick.Stop()
	var topic *stream.Topic
	wanted := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-pl.StateTopicWanted():
			wanted = true
		case <-tick.C:
		}
		if topic == nil {
			t, ok := streams.Topic(txn.StateTopic)
			if !ok {
				if wanted {
					if _, err := streams.EnsureInternalTopic(txn.StateTopic, want, txn.StateTopicConfigs()); err != nil {
						b.log.Debug("cannot create the transaction state topic yet", "err", err)
					}
				}
				continue
			}
			if n := t.NumPartitions(); n != want {
				b.log.Error("the cluster's transaction state topic has another partition count than --kafka-transaction-state-partitions; this node coordinates no transaction",
					"topic", txn.StateTopic, "partitions", n, "configured", want)
				return
			}
			topic = t
		}
		for _, p := range topic.Partitions() {
			pl.SetLeader(p.Index, streams.Node().Leader(p) == self, p, func() uint64 { return uint64(p.LeaderEpoch()) })
		}
	}
}
