package txn

// Adapters from the topic manager and the group coordinator to what the coordinator needs.

import (
	"context"
	"fmt"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
)

// StreamPartitions is Partitions over a topic manager.
func StreamPartitions(st *stream.Manager) Partitions { return txnPartitions{st} }

// GroupOffsets is Offsets over a group coordinator.
func GroupOffsets(g *group.Coordinator) Offsets { return txnOffsets{g} }

// txnPartitions adapts the topic manager to txn.Partitions.
type txnPartitions struct{ st *stream.Manager }

func (t txnPartitions) partition(tp TopicPartition) *stream.Partition {
	topic, ok := t.st.Topic(tp.Topic)
	if !ok {
		return nil
	}
	return topic.Partition(tp.Partition)
}

// Exists counts a partition this node holds no replica of (stream's placement): it exists.
func (t txnPartitions) Exists(tp TopicPartition) bool {
	topic, ok := t.st.Topic(tp.Topic)
	return ok && tp.Partition >= 0 && tp.Partition < topic.NumPartitions()
}

// Markable refuses a partition this node holds no replica of: its coordinator could not
// write its marker (markers go through the partition's group, of which this node is no
// member), so the transaction could not end there.
func (t txnPartitions) Markable(tp TopicPartition) error {
	if topic, ok := t.st.Topic(tp.Topic); ok && topic.IsRemote(tp.Partition) {
		return fmt.Errorf("cannot add %s-%d to a transaction: the transaction coordinator's node holds no replica of it: %w", tp.Topic, tp.Partition, stream.ErrNotReplicated)
	}
	return nil
}

func (t txnPartitions) WriteMarker(ctx context.Context, tp TopicPartition, pid int64, epoch int16, coordinatorEpoch int32, commit bool) error {
	p := t.partition(tp)
	if topic, ok := t.st.Topic(tp.Topic); ok && topic.IsRemote(tp.Partition) {
		return fmt.Errorf("cannot write transaction marker to %s-%d: %w", tp.Topic, tp.Partition, stream.ErrNotReplicated)
	}
	if p == nil {
		return fmt.Errorf("cannot write transaction marker to %s-%d: %w", tp.Topic, tp.Partition, stream.ErrUnknownTopic)
	}
	return p.WriteMarker(ctx, pid, epoch, coordinatorEpoch, commit)
}

// txnOffsets adapts the group coordinator to Offsets.
type txnOffsets struct{ g *group.Coordinator }

func groupOffsets(offs map[TopicPartition]Offset) map[group.TopicPartition]group.OffsetValue {
	m := make(map[group.TopicPartition]group.OffsetValue, len(offs))
	for tp, o := range offs {
		m[group.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] = group.OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
	}
	return m
}

// CommitTxnOffsets is not called (txnOffsets is an OffsetsLog); it commits plainly.
func (t txnOffsets) CommitTxnOffsets(ctx context.Context, g string, offs map[TopicPartition]Offset) error {
	return t.g.CommitTxnOffsets(ctx, g, groupOffsets(offs))
}

func (t txnOffsets) WriteTxnOffsets(ctx context.Context, g string, pid int64, epoch int16, offs map[TopicPartition]Offset) error {
	if err := t.g.WriteTxnOffsets(ctx, g, pid, epoch, groupOffsets(offs)); err != nil {
		return fmt.Errorf("%w: %w", ErrCoordinatorUnavailable, err)
	}
	return nil
}

func (t txnOffsets) CompleteTxnOffsets(ctx context.Context, g string, pid int64, epoch int16, coordinatorEpoch int32, commit bool, offs map[TopicPartition]Offset) error {
	return t.g.CompleteTxnOffsets(ctx, g, pid, epoch, coordinatorEpoch, commit, groupOffsets(offs))
}

// MarkerOffsets is Offsets on a cluster node: a transaction's offsets are in
// __consumer_offsets already (the group's coordinator wrote them as the producer's
// transactional records on TxnOffsetCommit, wherever it runs), so completing them is writing
// the transaction's marker to the group's partition, through its Raft group, from this node.
// The group coordinator applies the marker to its offsets when its partition applies it.
func MarkerOffsets(st *stream.Manager) Offsets { return markerOffsets{st} }

type markerOffsets struct{ st *stream.Manager }

// CommitTxnOffsets is not called (markerOffsets is an OffsetsLog).
func (m markerOffsets) CommitTxnOffsets(context.Context, string, map[TopicPartition]Offset) error {
	return ErrOffsetsNotReplicated
}

// WriteTxnOffsets is not called on a cluster node (TxnOffsetCommit goes to the group's
// coordinator).
func (m markerOffsets) WriteTxnOffsets(context.Context, string, int64, int16, map[TopicPartition]Offset) error {
	return ErrOffsetsNotReplicated
}

func (m markerOffsets) CompleteTxnOffsets(ctx context.Context, g string, pid int64, epoch int16, coordinatorEpoch int32, commit bool, _ map[TopicPartition]Offset) error {
	t, ok := m.st.Topic(group.OffsetsTopic)
	if !ok {
		return nil // no group's offsets anywhere yet: nothing to end
	}
	i := group.PartitionFor(g, t.NumPartitions())
	p := t.Partition(i)
	if p == nil {
		return fmt.Errorf("cannot write transaction marker to %s-%d: %w", group.OffsetsTopic, i, stream.ErrNotReplicated)
	}
	return p.WriteMarker(ctx, pid, epoch, coordinatorEpoch, commit)
}
