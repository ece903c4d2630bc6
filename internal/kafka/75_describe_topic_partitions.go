package kafka

// DescribeTopicPartitions, version 0 (KIP-966; used by Kafka 3.8+ admin clients to describe
// topics): named topics, or every topic when none is named, with paging by
// ResponsePartitionLimit and a cursor.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleDescribeTopicPartitions(rc *reqCtx, req *kmsg.DescribeTopicPartitionsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	var names []string
	if len(req.Topics) == 0 {
		for _, t := range rc.s.st.Topics() {
			// As Metadata: topics the principal may not Describe are left out.
			if rc.authorizedTopic(kmsg.ACLOperationDescribe, t.Name) {
				names = append(names, t.Name)
			}
		}
	} else {
		for _, t := range req.Topics {
			names = append(names, t.Topic)
		}
		sort.Strings(names) // the cursor walks topics in name order, as Kafka's does
	}
	limit := req.ResponsePartitionLimit
	if limit <= 0 {
		limit = 2000
	}
	var startTopic string
	var startPart int32
	if req.Cursor != nil {
		startTopic, startPart = req.Cursor.Topic, req.Cursor.Partition
	}
	var count int32
	for _, name := range names {
		if name < startTopic {
			continue
		}
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		rt.Topic = strPtr(name)
		if !rc.authorizedTopic(kmsg.ACLOperationDescribe, name) {
			rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		t, ok := rc.s.st.Topic(name)
		if !ok {
			rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if stream.ValidTopicName(name) != nil {
				rt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		rt.TopicID = t.ID
		rt.IsInternal = t.Internal
		rt.AuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeTopic, name)
		for i := range t.NumPartitions() {
			if name == startTopic && i < startPart {
				continue
			}
			if count == limit {
				resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: i}
				break
			}
			ps := rc.s.st.Node().State(t, i)
			rp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			rp.Partition, rp.LeaderID, rp.LeaderEpoch = i, ps.Leader, ps.Epoch
			rp.Replicas, rp.ISR = ps.Replicas, ps.ISR
			rp.EligibleLeaderReplicas, rp.LastKnownELR, rp.OfflineReplicas = []int32{}, []int32{}, []int32{}
			rt.Partitions = append(rt.Partitions, rp)
			count++
		}
		resp.Topics = append(resp.Topics, rt)
		if resp.NextCursor != nil {
			break
		}
	}
	return respond(resp), nil
}
