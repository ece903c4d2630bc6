package kafka

// OffsetCommit, versions 0-9. The coordinator validates the member (generation, or member
// epoch for KIP-848 groups; generation -1 with no member id is a "simple" commit, allowed
// while the group has no members), then the offsets are appended to the offsets log; the
// answer waits (in the connection's writer) until they are durable, so an acknowledged commit
// survives a crash. Unknown topics or partitions get a per-partition error. v0 carries no
// generation and is a simple commit; v2-4's retention time is ignored (the broker's
// offsets retention applies, as in Kafka 2.1+).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleOffsetCommit(rc *reqCtx, req *kmsg.OffsetCommitRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	cr := group.CommitRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
		Generation: req.Generation, Offsets: map[group.TopicPartition]group.OffsetValue{},
	}
	if req.Version == 0 {
		cr.Generation = -1
	}
	groupDenied := !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group)
	deniedTopic := map[string]bool{}
	for _, t := range req.Topics {
		if !rc.authorizedTopic(kmsg.ACLOperationRead, t.Topic) {
			deniedTopic[t.Topic] = true
			continue
		}
		for _, p := range t.Partitions {
			epoch := int32(-1)
			if req.Version >= 6 {
				epoch = p.LeaderEpoch
			}
			cr.Offsets[group.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = group.OffsetValue{
				Offset: p.Offset, LeaderEpoch: epoch, Metadata: grpDeref(p.Metadata),
			}
		}
	}
	fill := func(perPartition map[group.TopicPartition]error, all error) {
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				err := all
				if err == nil && deniedTopic[t.Topic] {
					err = errTopicAuthorization
				}
				if err == nil {
					err = perPartition[group.TopicPartition{Topic: t.Topic, Partition: p.Partition}]
				}
				rp.ErrorCode = groupErrorCode(err)
				if req.Version < 9 && rp.ErrorCode == kerr.GroupIDNotFound.Code {
					rp.ErrorCode = kerr.IllegalGeneration.Code // what Kafka answers before v9
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if groupDenied {
		fill(nil, errGroupAuthorization)
		return respond(resp), nil
	}
	if rc.groups() == nil {
		fill(nil, group.ErrCoordinatorNotAvailable)
		return respond(resp), nil
	}
	// Validation and the append happen in the writer goroutine, after any earlier request of
	// this connection has been answered, so a client's commits apply in the order it sent them.
	return &kmsgReply{resp: resp, before: func() {
		per, err := rc.groups().Commit(rc.c.ctx, cr)
		fill(per, err)
	}}, nil
}
