package kafka

// ConsumerGroupDescribe, versions 0-1 (KIP-848 groups). A classic or unknown group answers
// GROUP_ID_NOT_FOUND, as Kafka does; the Java admin client then describes it with
// DescribeGroups.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleConsumerGroupDescribe(rc *reqCtx, req *kmsg.ConsumerGroupDescribeRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group, rg.AuthorizedOperations = id, authorizedOperationsNone
		if !rc.authorizedGroup(kmsg.ACLOperationDescribe, id) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		if rc.groups() == nil {
			rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, err := rc.groups().DescribeConsumerGroup(rc.c.ctx, id)
		if err != nil {
			rg.ErrorCode, rg.ErrorMessage = groupErrorCode(err), groupErrorMessage(err)
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State, rg.Epoch, rg.AssignmentEpoch, rg.AssignorName = d.State.String(), d.Epoch, d.AssignmentEpoch, d.Assignor
		if req.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeGroup, id)
		}
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.RackID = m.MemberID, grpOptStr(m.InstanceID), grpOptStr(m.RackID)
			rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberEpoch, m.ClientID, m.ClientHost
			rm.SubscribedTopics, rm.SubscribedTopicRegex = m.Subscribed, grpOptStr(m.SubscribedRegex)
			if rm.SubscribedTopics == nil {
				rm.SubscribedTopics = []string{}
			}
			rm.Assignment, rm.TargetAssignment = rc.kmsgAssignment(m.Assigned), rc.kmsgAssignment(m.Target)
			if req.Version >= 1 {
				rm.MemberType = 1 // consumer protocol member (0 would be classic)
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return respond(resp), nil
}

func (rc *reqCtx) kmsgAssignment(tps []group.TopicPartition) kmsg.Assignment {
	a := kmsg.NewAssignment()
	for _, tp := range tps {
		t, ok := rc.s.st.Topic(tp.Topic)
		if !ok {
			continue
		}
		if n := len(a.TopicPartitions); n == 0 || a.TopicPartitions[n-1].Topic != tp.Topic {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Topic = [16]byte(t.ID), tp.Topic
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		at := &a.TopicPartitions[len(a.TopicPartitions)-1]
		at.Partitions = append(at.Partitions, tp.Partition)
	}
	return a
}
