package kafka

// FindCoordinator, versions 0-6. Every group's coordinator is this broker (one node), so
// the answer is the address Metadata advertises. Key type 0 (group) only. Transactions are not
// served: key type 1 is answered TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka answers a
// client not permitted to use that transactional ID, a fatal error on which the Java producer
// and librdkafka fail at once (COORDINATOR_NOT_AVAILABLE or INVALID_REQUEST would be retried
// until the client's timeout). Share groups (key type 2) do not exist here: INVALID_REQUEST,
// as Kafka answers when they are not enabled.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
		case req.CoordinatorType == 1:
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			c.ErrorMessage = strPtr("yard does not support Kafka transactions; unset transactional.id (an idempotent producer still writes each record once)")
		case req.CoordinatorType != 0:
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = strPtr("yard coordinates consumer groups only (key type 0)")
		case rc.groups() == nil:
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		case key == "":
			c.ErrorCode = kerr.InvalidGroupID.Code // Kafka refuses an empty group id here too
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
