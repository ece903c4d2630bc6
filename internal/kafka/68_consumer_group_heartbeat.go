package kafka

// ConsumerGroupHeartbeat, versions 0-1 (KIP-848, the "consumer" group protocol of Java
// kafka-clients 4.x with group.protocol=consumer). The coordinator assigns partitions itself
// (server assignors "uniform" and "range"); topics travel as topic ids here and as names in
// internal/group. v1's SubscribedTopicRegex (Java's subscribe(SubscriptionPattern)) is
// evaluated by the broker with Go's regexp, which is RE2 like Kafka's RE2/J.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/group"
)

func handleConsumerGroupHeartbeat(rc *reqCtx, req *kmsg.ConsumerGroupHeartbeatRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.MemberEpoch = req.MemberEpoch
	resp.MemberID = strPtr(req.MemberID)
	switch {
	case !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	case rc.groups() == nil:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	case req.Version >= 1 && req.MemberID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = strPtr("MemberId must be set from version 1 (KIP-1082)")
		return respond(resp), nil
	}
	hr := group.ConsumerHeartbeatRequest{
		Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		InstanceID: grpDeref(req.InstanceID), RackID: grpDeref(req.RackID),
		ClientID: rc.hdr.clientID, ClientHost: rc.clientHost(),
		RebalanceTimeout: grpMillis(req.RebalanceTimeoutMillis),
		SubscribedTopics: req.SubscribedTopicNames, SubscribedRegex: req.SubscribedTopicRegex,
		ServerAssignor: req.ServerAssignor,
	}
	if req.Topics != nil {
		hr.OwnedSet = true
		hr.Owned = []group.TopicPartition{}
		for _, t := range req.Topics {
			topic, ok := rc.s.st.TopicByID(catalog.UUID(t.TopicID))
			if !ok {
				continue // deleted meanwhile: nothing to own
			}
			for _, p := range t.Partitions {
				hr.Owned = append(hr.Owned, group.TopicPartition{Topic: topic.Name, Partition: p})
			}
		}
	}
	res := rc.groups().ConsumerHeartbeat(rc.c.ctx, hr)
	resp.ErrorCode, resp.ErrorMessage = groupErrorCode(res.Err), groupErrorMessage(res.Err)
	resp.MemberID, resp.MemberEpoch = strPtr(res.MemberID), res.MemberEpoch
	resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval.Milliseconds())
	if res.Err != nil || !res.AssignmentSet {
		return respond(resp), nil
	}
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	for _, tp := range res.Assignment {
		t, ok := rc.s.st.Topic(tp.Topic)
		if !ok {
			continue
		}
		if n := len(a.Topics); n == 0 || a.Topics[n-1].TopicID != [16]byte(t.ID) {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID = [16]byte(t.ID)
			a.Topics = append(a.Topics, at)
		}
		at := &a.Topics[len(a.Topics)-1]
		at.Partitions = append(at.Partitions, tp.Partition)
	}
	resp.Assignment = &a
	return respond(resp), nil
}
