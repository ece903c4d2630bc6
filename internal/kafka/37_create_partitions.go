package kafka

// CreatePartitions, versions 0-3: raise a topic's partition count. A manual assignment may
// only name this node.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(rc *reqCtx, req *kmsg.CreatePartitionsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !rc.authorizedTopic(kmsg.ACLOperationAlter, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		for _, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != rc.s.st.Node().ID() {
				st.ErrorCode = kerr.InvalidReplicaAssignment.Code
				st.ErrorMessage = errorMessage(fmt.Errorf("this cluster has one broker (id %d); every partition must have exactly that replica", rc.s.st.Node().ID()))
				break
			}
		}
		if st.ErrorCode == 0 {
			if err := rc.s.st.CreatePartitions(rt.Topic, rt.Count, req.ValidateOnly); err != nil {
				st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
