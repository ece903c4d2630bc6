package kafka

// FindCoordinator, versions 0-6. Every group's and every transactional ID's coordinator is
// this broker (one node), so the answer is the address Metadata advertises: key type 0
// (group) and 1 (transaction, internal/txn; a server without a transaction coordinator
// answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal for clients, rather than a retriable
// error). Share groups (key type 2) do not exist here: INVALID_REQUEST,
// as Kafka answers when they are not enabled.
//
// On a cluster node a group's coordinator is the leader of its partition of the replicated
// __consumer_offsets (internal/group placement.go), at the address it registered in the
// cluster's catalog: COORDINATOR_NOT_AVAILABLE while that partition has no leader (or the
// leader's address is not known yet), as Kafka answers, and while the topic does not exist:
// the first FindCoordinator has it created, as Kafka does.
// A transactional ID's coordinator on a cluster node is, likewise, the leader of its
// partition of the replicated __transaction_state (internal/txn placement.go), created on the
// first FindCoordinator with key type 1.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

func handleFindCoordinator(rc *reqCtx, req *kmsg.FindCoordinatorRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	host, port := rc.advertisedHostPort()
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = key, -1, "", -1
		switch {
		case req.CoordinatorType == 0 && !rc.authorizedGroup(kmsg.ACLOperationDescribe, key):
			c.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case req.CoordinatorType == 1 && !rc.authorizedTxn(kmsg.ACLOperationDescribe, key):
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case req.CoordinatorType == 1:
			switch {
			case rc.txn() == nil:
				c.ErrorCode = errNoTxnCoordinator
				c.ErrorMessage = strPtr("this server has no transaction coordinator")
			case key == "":
				c.ErrorCode = kerr.InvalidRequest.Code
			default:
				if pl, ok := rc.txn().(*txn.Placed); ok {
					c.NodeID, c.Host, c.Port, c.ErrorCode = rc.txnCoordinator(pl, key, host, port)
				} else {
					c.NodeID, c.Host, c.Port = rc.s.st.Node().ID(), host, port
				}
			}
		case req.CoordinatorType != 0:
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = strPtr("yard coordinates consumer groups and transactions only (key types 0 and 1)")
		case rc.groups() == nil:
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case key == "":
			c.ErrorCode = kerr.InvalidGroupID.Code // Kafka refuses an empty group id here too
		case rc.groups().Clustered():
			c.NodeID, c.Host, c.Port, c.ErrorCode = rc.groupCoordinator(key, host, port)
		default:
			c.NodeID, c.Host, c.Port = rc.s.st.Node().ID(), host, port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	return respond(resp), nil
}

// groupCoordinator answers key type 0 on a cluster node: the leader of the group's partition
// of __consumer_offsets. host and port are this node's advertised address.
func (rc *reqCtx) groupCoordinator(key, host string, port int32) (int32, string, int32, int16) {
	t, ok := rc.s.st.Topic(group.OffsetsTopic)
	if !ok { // created on first use, as in Kafka
		rc.groups().WantOffsetsTopic()
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return rc.leaderOf(t.Partition(rc.groups().OffsetsPartitionFor(key)), host, port)
}

// txnCoordinator answers key type 1 on a cluster node: the leader of the transactional ID's
// partition of __transaction_state.
func (rc *reqCtx) txnCoordinator(pl *txn.Placed, key, host string, port int32) (int32, string, int32, int16) {
	t, ok := rc.s.st.Topic(txn.StateTopic)
	if !ok { // created on first use, as in Kafka
		pl.WantStateTopic()
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return rc.leaderOf(t.Partition(pl.PartitionFor(key)), host, port)
}

// leaderOf is the id and address of p's leader (COORDINATOR_NOT_AVAILABLE while there is
// none, or its address is not known yet).
func (rc *reqCtx) leaderOf(p *stream.Partition, host string, port int32) (int32, string, int32, int16) {
	none := func() (int32, string, int32, int16) { return -1, "", -1, kerr.CoordinatorNotAvailable.Code }
	if p == nil {
		return none()
	}
	node := rc.s.st.Node()
	leader := node.Leader(p)
	if leader == node.ID() {
		return leader, host, port, 0
	}
	for _, b := range rc.s.st.Brokers() {
		if b.ID == leader {
			return b.ID, b.Host, b.Port, 0
		}
	}
	return none()
}
