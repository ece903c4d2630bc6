package kafka

// ElectLeaders, versions 0-2. On one node every partition's leader is its only replica, which
// is also its preferred leader, so no election is ever needed: a named partition is answered
// ELECTION_NOT_NEEDED (preferred or unclean alike), an unknown one UNKNOWN_TOPIC_OR_PARTITION.
// A request for every partition (no topics) gets an empty result, as Kafka leaves out the
// partitions that already have the desired leader.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleElectLeaders(rc *reqCtx, req *kmsg.ElectLeadersRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !rc.authorizedCluster(kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp), nil
	}
	if req.Version >= 1 && req.ElectionType != 0 && req.ElectionType != 1 { // 0 preferred, 1 unclean
		resp.ErrorCode = kerr.InvalidRequest.Code
		return respond(resp), nil
	}
	for _, rt := range req.Topics {
		out := kmsg.NewElectLeadersResponseTopic()
		out.Topic = rt.Topic
		t, ok := rc.s.st.Topic(rt.Topic)
		for _, p := range rt.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition = p
			if !ok || t.Partition(p) == nil {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rp.ErrorMessage = strPtr(fmt.Sprintf("no partition %d of topic %q", p, rt.Topic))
			} else {
				rp.ErrorCode = kerr.ElectionNotNeeded.Code
				rp.ErrorMessage = strPtr(fmt.Sprintf("broker %d, the only replica, already leads it", rc.s.st.Node().ID()))
			}
			out.Partitions = append(out.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return respond(resp), nil
}
