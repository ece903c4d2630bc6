package kafka

// CreateTopics, versions 0-7. The replication factor is at most the number of nodes (one
// broker: 1; -1 is the default, min(3, nodes)), INVALID_REPLICATION_FACTOR beyond; on a
// cluster node the replicas are placed as Kafka places them, or as an explicit replica
// assignment says (stream's placement.go). NumPartitions -1 means the broker default. v5+
// responses carry the effective configs, v7+ the topic ID.

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleCreateTopics(rc *reqCtx, req *kmsg.CreateTopicsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = errorMessage(fmt.Errorf("topic %q appears more than once in the request", rt.Topic))
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !rc.mayCreateTopic(rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		n, rf, err := rc.createTopic(rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.NumPartitions, st.ReplicationFactor = n, rf
		if t, ok := rc.s.st.Topic(rt.Topic); ok && !req.ValidateOnly {
			st.TopicID = t.ID
			if cfgs, err := rc.s.st.TopicConfigs(rt.Topic); err == nil {
				for _, c := range cfgs {
					rc := kmsg.NewCreateTopicsResponseTopicConfig()
					rc.Name, rc.Value, rc.Source = c.Name, strPtr(c.Value), int8(c.Source)
					st.Configs = append(st.Configs, rc)
				}
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}

func (rc *reqCtx) createTopic(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (int32, int16, error) {
	n := rt.NumPartitions
	pl := stream.Placement{ReplicationFactor: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rt.ReplicationFactor != -1 {
			return 0, 0, &kerrWithMsg{kerr.InvalidRequest.Code, "both a replica assignment and partitions/replication factor were given"}
		}
		as := slices.Clone(rt.ReplicaAssignment)
		slices.SortFunc(as, func(a, b kmsg.CreateTopicsRequestTopicReplicaAssignment) int {
			return cmp.Compare(a.Partition, b.Partition)
		})
		for i, a := range as {
			if a.Partition != int32(i) {
				return 0, 0, &kerrWithMsg{kerr.InvalidReplicaAssignment.Code, "partitions should be a consecutive 0-based integer sequence"}
			}
			pl.Assignment = append(pl.Assignment, a.Replicas)
		}
		n = int32(len(rt.ReplicaAssignment))
	}
	if n == -1 {
		n = rc.s.cfg.DefaultPartitions
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value != nil {
			configs[c.Name] = *c.Value
		}
	}
	if _, err := rc.s.st.CreatePlacedTopic(rt.Topic, n, pl, configs, validateOnly); err != nil {
		return 0, 0, err
	}
	rf := rt.ReplicationFactor
	switch {
	case len(pl.Assignment) > 0:
		rf = int16(len(pl.Assignment[0]))
	case rf == -1:
		rf = min(3, rc.s.st.Node().ClusterSize())
	}
	return n, rf, nil
}

func strPtr(s string) *string { return &s }
