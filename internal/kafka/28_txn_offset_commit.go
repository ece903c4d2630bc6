package kafka

// TxnOffsetCommit, versions 0-5: offsets a transaction commits for a group; v5 under
// transaction version 2 (KIP-890) adds the group to the transaction itself, without
// AddOffsetsToTxn. v3+ name the
// group member (KIP-447), checked as OffsetCommit checks it, so that a consumer of an earlier
// generation cannot commit. The offsets are held by the transaction coordinator until the
// transaction ends: committed with it, dropped if it aborts; OffsetFetch does not see them
// before.
//
// On a cluster node (the group's coordinator: NOT_COORDINATOR elsewhere) the group
// coordinator writes them itself to the group's partition of the replicated
// __consumer_offsets as the producer's transactional records, as Kafka does, pending until the
// transaction coordinator (on whichever node) writes the transaction's marker there.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/txn"
)

func handleTxnOffsetCommit(rc *reqCtx, req *kmsg.TxnOffsetCommitRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	deniedTopic := map[string]bool{}
	for _, rt := range req.Topics {
		if !rc.authorizedTopic(kmsg.ACLOperationRead, rt.Topic) {
			deniedTopic[rt.Topic] = true
		}
	}
	fill := func(out map[txn.TopicPartition]error, all int16) {
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = p.Partition, all
				if all == 0 {
					sp.ErrorCode = txnErrorCode(out[txn.TopicPartition{Topic: rt.Topic, Partition: p.Partition}])
					if deniedTopic[rt.Topic] {
						sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	switch {
	case !rc.authorizedTxn(kmsg.ACLOperationWrite, req.TransactionalID):
		fill(nil, kerr.TransactionalIDAuthorizationFailed.Code)
		return respond(resp), nil
	case !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group):
		fill(nil, kerr.GroupAuthorizationFailed.Code)
		return respond(resp), nil
	}
	if rc.txn() == nil || rc.groups() == nil {
		fill(nil, errNoTxnCoordinator)
		return respond(resp), nil
	}
	cr := group.CommitRequest{Group: req.Group, Generation: -1}
	if req.Version >= 3 {
		cr.Generation, cr.MemberID, cr.InstanceID = req.Generation, req.MemberID, grpDeref(req.InstanceID)
	}
	offs := map[txn.TopicPartition]txn.Offset{}
	for _, rt := range req.Topics {
		if deniedTopic[rt.Topic] {
			continue
		}
		for _, p := range rt.Partitions {
			epoch := int32(-1)
			if req.Version >= 2 {
				epoch = p.LeaderEpoch
			}
			offs[txn.TopicPartition{Topic: rt.Topic, Partition: p.Partition}] = txn.Offset{Offset: p.Offset, LeaderEpoch: epoch, Metadata: grpDeref(p.Metadata)}
		}
	}
	// The partitions go along: a member may commit at its previous epoch the partitions it
	// has held since (KIP-1251).
	cr.Offsets = make(map[group.TopicPartition]group.OffsetValue, len(offs))
	for tp := range offs {
		cr.Offsets[group.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] = group.OffsetValue{}
	}
	if err := rc.groups().ValidateTxnCommit(rc.c.ctx, cr); err != nil {
		fill(nil, groupErrorCode(err))
		return respond(resp), nil
	}
	if rc.groups().Clustered() {
		gofs := make(map[group.TopicPartition]group.OffsetValue, len(offs))
		for tp, o := range offs {
			gofs[group.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] = group.OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
		}
		if err := rc.groups().WriteTxnOffsets(rc.c.ctx, req.Group, req.ProducerID, req.ProducerEpoch, gofs); err != nil {
			fill(nil, groupErrorCode(err))
			return respond(resp), nil
		}
		fill(map[txn.TopicPartition]error{}, 0)
		return respond(resp), nil
	}
	out, err := rc.txn().CommitOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offs, req.Version >= 5)
	if err != nil {
		fill(nil, txnErrorCode(err))
		return respond(resp), nil
	}
	fill(out, 0)
	return respond(resp), nil
}
