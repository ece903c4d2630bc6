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
	b.followCoordinatorTopic(ctx, streams, coordinatorTopic{
		name: group.OffsetsTopic, partitions: b.cfg.Kafka.OffsetsTopicPartitions,
		configs: group.OffsetsTopicConfigs(), wanted: groups.OffsetsTopicWanted(),
		flag: "--kafka-offsets-topic-partitions", coordinates: "group",
	}, func(p *stream.Partition, leads bool) {
		groups.SetLeader(p.Index, leads, p, func() uint64 { return uint64(p.LeaderEpoch()) }, p.ReplicaBarrier)
	})
}

// coordinatorTopic is a replicated internal topic whose partitions' leaders coordinate what
// hashes to them: __consumer_offsets (groups) and __transaction_state (transactional ids).
type coordinatorTopic struct {
	name        string
	partitions  int32
	configs     map[string]string
	wanted      <-chan struct{} // a client looked for a coordinator: create the topic
	flag        string          // the flag that sets partitions, for the error
	coordinates string          // what a partition's leader coordinates, for the error
}

// followCoordinatorTopic creates t once it is wanted (as Kafka, on first use), then until ctx
// ends tells setLeader, every leadershipPollMs, which of its partitions this node leads.
func (b *Broker) followCoordinatorTopic(ctx context.Context, streams *stream.Manager, t coordinatorTopic, setLeader func(p *stream.Partition, leads bool)) {
	self := streams.Node().ID()
	tick := time.NewTicker(leadershipPollMs * time.Millisecond)
	defer tick.Stop()
	var topic *stream.Topic
	wanted := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wanted:
			wanted = true
		case <-tick.C:
		}
		if topic == nil {
			found, ok := streams.Topic(t.name)
			if !ok {
				if wanted {
					if _, err := streams.EnsureInternalTopic(t.name, t.partitions, t.configs); err != nil {
						b.log.Debug("cannot create an internal topic yet", "topic", t.name, "err", err)
					}
				}
				continue
			}
			if n := found.NumPartitions(); n != t.partitions {
				b.log.Error("the cluster's internal topic has another partition count than "+t.flag+"; this node coordinates no "+t.coordinates,
					"topic", t.name, "partitions", n, "configured", t.partitions)
				return
			}
			topic = found
		}
		for _, p := range topic.Partitions() {
			setLeader(p, streams.Node().Leader(p) == self)
		}
	}
}
