package broker

// Consumer groups on a cluster node: __consumer_offsets is a replicated internal topic like any
// other topic (one Raft group per partition, every node a voter), and the group coordinator of
// each partition's groups is that partition's leader (internal/group placement.go).

import (
	"context"
	"time"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
)

// leadershipPollMs is how often coordinateGroups looks at partition leadership: a group's
// coordinator moves at most this long after its partition's leader does.
const leadershipPollMs = 50

// coordinateGroups creates the replicated __consumer_offsets once a client looks for a group's
// coordinator (as Kafka, on first use: a cluster without groups runs no Raft group for it),
// then, until ctx ends, tells the group coordinator which of its partitions this node leads.
func (b *Broker) coordinateGroups(ctx context.Context, streams *stream.Manager) {
	groups := b.groups
	if groups == nil || !groups.Clustered() {
		return // no Kafka front end on this node
	}
	want := b.cfg.Kafka.OffsetsTopicPartitions
	self := streams.Node().ID()
	tick := time.NewTicker(leadershipPollMs * time.Millisecond)
	defer tick.Stop()
	var topic *stream.Topic
	wanted := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-groups.OffsetsTopicWanted():
			wanted = true
		case <-tick.C:
		}
		if topic == nil {
			t, ok := streams.Topic(group.OffsetsTopic)
			if !ok {
				if wanted {
					if _, err := streams.EnsureInternalTopic(group.OffsetsTopic, want, group.OffsetsTopicConfigs()); err != nil {
						b.log.Debug("cannot create the offsets topic yet", "err", err)
					}
				}
				continue
			}
			if n := t.NumPartitions(); n != want {
				b.log.Error("the cluster's offsets topic has another partition count than --kafka-offsets-topic-partitions; this node coordinates no group",
					"topic", group.OffsetsTopic, "partitions", n, "configured", want)
				return
			}
			topic = t
		}
		for _, p := range topic.Partitions() {
			groups.SetLeader(p.Index, streams.Node().Leader(p) == self, p,
				func() uint64 { return uint64(p.LeaderEpoch()) }, p.ReplicaBarrier)
		}
	}
}
