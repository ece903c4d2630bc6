package kafka

// OffsetFetch, versions 0-9. v0-7 ask for one group, v8+ for several. A nil topic list
// (v2+) asks for every committed offset of the group. A partition without a committed offset
// answers -1, as does an unknown group (Kafka's empty answer). v7's RequireStable: a
// partition for which an open transaction holds offsets (TxnOffsetCommit, not yet ended)
// answers UNSTABLE_OFFSET_COMMIT, which clients retry, as Kafka does. v9's
// member id and epoch (KIP-848) are not checked. On a cluster node, a group this node does not
// coordinate answers NOT_COORDINATOR (COORDINATOR_LOAD_IN_PROGRESS while loading it).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/txn"
)

func handleOffsetFetch(rc *reqCtx, req *kmsg.OffsetFetchRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []kmsg.OffsetFetchRequestGroupTopic
		for _, t := range req.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		if req.Topics == nil && req.Version < 2 {
			topics = []kmsg.OffsetFetchRequestGroupTopic{}
		}
		g := rc.fetchGroupOffsets(req.Group, topics, req.Topics == nil, req.Version >= 7 && req.RequireStable)
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		if req.Version < 2 && resp.ErrorCode != 0 {
			resp.ErrorCode = 0 // no top-level error field before v2
		}
		return respond(resp), nil
	}
	for _, rg := range req.Groups {
		resp.Groups = append(resp.Groups, rc.fetchGroupOffsets(rg.Group, rg.Topics, rg.Topics == nil, req.RequireStable))
	}
	return respond(resp), nil
}

func (rc *reqCtx) fetchGroupOffsets(groupID string, topics []kmsg.OffsetFetchRequestGroupTopic, all, requireStable bool) kmsg.OffsetFetchResponseGroup {
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = groupID
	if !rc.authorizedGroup(kmsg.ACLOperationDescribe, groupID) {
		out.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return out
	}
	if rc.groups() == nil {
		out.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return out
	}
	var tps []group.TopicPartition
	if !all {
		tps = []group.TopicPartition{}
		for _, t := range topics {
			for _, p := range t.Partitions {
				tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	if err := rc.groups().Coordinates(groupID); err != nil { // a cluster node's other groups
		out.ErrorCode = groupErrorCode(err)
		for _, t := range topics { // v0-1 have no group error: each partition carries it
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, out.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
		return out
	}
	var pending map[txn.TopicPartition]bool
	switch {
	case requireStable && rc.groups().Clustered():
		// The group's coordinator holds them (the transaction's may be on another node).
		for tp := range rc.groups().PendingTxnOffsets(groupID) {
			if pending == nil {
				pending = map[txn.TopicPartition]bool{}
			}
			pending[txn.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] = true
		}
	case requireStable && rc.txn() != nil:
		pending = rc.txn().PendingOffsets(groupID)
	}
	byTopic := map[string]int{}
	describable := map[string]bool{}
	for _, f := range rc.groups().FetchOffsets(groupID, tps) {
		ok, seen := describable[f.Topic]
		if !seen {
			ok = rc.authorizedTopic(kmsg.ACLOperationDescribe, f.Topic)
			describable[f.Topic] = ok
		}
		if !ok && all {
			continue // as Kafka: topics the principal may not Describe are left out
		}
		if !ok {
			f.Offset, f.LeaderEpoch, f.Metadata = -1, -1, ""
		}
		i, ok := byTopic[f.Topic]
		if !ok {
			i = len(out.Topics)
			byTopic[f.Topic] = i
			t := kmsg.NewOffsetFetchResponseGroupTopic()
			t.Topic = f.Topic
			out.Topics = append(out.Topics, t)
		}
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = f.Partition, f.Offset, f.LeaderEpoch
		p.Metadata = strPtr(f.Metadata)
		if !describable[f.Topic] {
			p.ErrorCode = kerr.TopicAuthorizationFailed.Code
		} else if pending[txn.TopicPartition{Topic: f.Topic, Partition: f.Partition}] {
			p.ErrorCode, p.Offset = kerr.UnstableOffsetCommit.Code, -1
		}
		out.Topics[i].Partitions = append(out.Topics[i].Partitions, p)
	}
	return out
}
