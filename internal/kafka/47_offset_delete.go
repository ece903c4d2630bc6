package kafka

// OffsetDelete, version 0: removes a group's committed offsets for some partitions, refused
// per partition (GROUP_SUBSCRIBED_TO_TOPIC) for topics the group's members subscribe to, and
// for the whole request (NON_EMPTY_GROUP) on a non-empty group of another protocol type.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleOffsetDelete(rc *reqCtx, req *kmsg.OffsetDeleteRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !rc.authorizedGroup(kmsg.ACLOperationDelete, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	var tps []group.TopicPartition
	deniedTopic := map[string]bool{}
	for _, t := range req.Topics {
		if !rc.authorizedTopic(kmsg.ACLOperationRead, t.Topic) {
			deniedTopic[t.Topic] = true
			continue
		}
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	return &kmsgReply{resp: resp, before: func() {
		per, err := rc.groups().DeleteOffsets(rc.c.ctx, req.Group, tps)
		if err != nil {
			resp.ErrorCode = groupErrorCode(err)
			return
		}
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = groupErrorCode(per[group.TopicPartition{Topic: t.Topic, Partition: p.Partition}])
				if deniedTopic[t.Topic] {
					rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}}, nil
}
