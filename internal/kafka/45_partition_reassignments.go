package kafka

// AlterPartitionReassignments 0-1 (45) and ListPartitionReassignments 0 (46). On one node a
// partition's only possible replica set is this broker, so a reassignment to exactly it
// succeeds at once (nothing moves), any other replica set is INVALID_REPLICA_ASSIGNMENT, and a
// cancellation finds NO_REASSIGNMENT_IN_PROGRESS; no reassignment is ever in progress.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterPartitionReassignments(rc *reqCtx, req *kmsg.AlterPartitionAssignmentsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if !rc.authorizedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp), nil
	}
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		out.Topic = rt.Topic
		t, ok := rc.s.st.Topic(rt.Topic)
		for _, p := range rt.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !ok || t.Partition(p.Partition) == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rp.ErrorMessage = strPtr(fmt.Sprintf("no partition %d of topic %q", p.Partition, rt.Topic))
			case p.Replicas == nil:
				rp.ErrorCode = kerr.NoReassignmentInProgress.Code
				rp.ErrorMessage = strPtr("no reassignment is in progress for this partition")
			case len(p.Replicas) != 1 || p.Replicas[0] != rc.s.st.Node().ID():
				rp.ErrorCode = kerr.InvalidReplicaAssignment.Code
				rp.ErrorMessage = strPtr(fmt.Sprintf("replicas %v: this cluster has one broker (id %d), the only replica of every partition", p.Replicas, rc.s.st.Node().ID()))
			}
			out.Partitions = append(out.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return respond(resp), nil
}

func handleListPartitionReassignments(rc *reqCtx, req *kmsg.ListPartitionReassignmentsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	resp.Topics = []kmsg.ListPartitionReassignmentsResponseTopic{}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return respond(resp), nil
}
