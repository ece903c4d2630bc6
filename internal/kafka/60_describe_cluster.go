package kafka

// DescribeCluster, versions 0-2: this broker, which is also the controller, and on a cluster
// node the other registered members.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(rc *reqCtx, req *kmsg.DescribeClusterRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 { // 1 = brokers; 2 = controllers (KRaft)
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return respond(resp), nil
	}
	host, port := rc.advertisedHostPort()
	resp.EndpointType = 1
	resp.ClusterID = rc.s.cfg.ClusterID
	resp.ControllerID = rc.s.st.Node().ID()
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeCluster, clusterResourceName)
	}
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = rc.s.st.Node().ID(), host, port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	for _, cb := range rc.s.st.Brokers() { // a cluster's other members
		if cb.ID != b.NodeID {
			ob := kmsg.NewDescribeClusterResponseBroker()
			ob.NodeID, ob.Host, ob.Port = cb.ID, cb.Host, cb.Port
			resp.Brokers = append(resp.Brokers, ob)
		}
	}
	return respond(resp), nil
}
