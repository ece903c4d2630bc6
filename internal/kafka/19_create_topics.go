package kafka

// CreateTopics, versions 0-7. One broker: the replication factor must be 1 (or -1, the
// default; on a cluster node: the cluster's size, as every node holds every partition so far)
// default), and a manual replica assignment may only name this node. NumPartitions -1 means
// the broker default. v5+ responses carry the effective configs, v7+ the topic ID.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
		n, err := rc.createTopic(rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.NumPartitions, st.ReplicationFactor = n, rc.s.st.Node().ReplicationFactor()
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

func (rc *reqCtx) createTopic(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (int32, error) {
	n := rt.NumPartitions
	node := rc.s.st.Node().ID()
	rf := rc.s.st.Node().ReplicationFactor()
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rt.ReplicationFactor != -1 {
			return 0, &kerrWithMsg{kerr.InvalidRequest.Code, "both a replica assignment and partitions/replication factor were given"}
		}
		for _, a := range rt.ReplicaAssignment {
			if rf > 1 { // a cluster: every node holds every partition
				if len(a.Replicas) != int(rf) {
					return 0, &kerrWithMsg{kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("this cluster replicates every partition on all its %d brokers", rf)}
				}
				continue
			}
			if len(a.Replicas) != 1 || a.Replicas[0] != node {
				return 0, &kerrWithMsg{kerr.InvalidReplicaAssignment.Code, fmt.Sprintf("this cluster has one broker (id %d); every partition must have exactly that replica", node)}
			}
		}
		n = int32(len(rt.ReplicaAssignment))
	} else if rt.ReplicationFactor != -1 && rt.ReplicationFactor != rf {
		if rf == 1 {
			return 0, &kerrWithMsg{kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d is larger than the 1 available broker", rt.ReplicationFactor)}
		}
		return 0, &kerrWithMsg{kerr.InvalidReplicationFactor.Code, fmt.Sprintf("replication factor %d: this cluster replicates every partition on all its %d brokers", rt.ReplicationFactor, rf)}
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
	if _, err := rc.s.st.CreateTopic(rt.Topic, n, configs, validateOnly); err != nil {
		return 0, err
	}
	return n, nil
}

func strPtr(s string) *string { return &s }
