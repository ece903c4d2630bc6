package kafka

// Heartbeat, versions 0-4 (classic group protocol): keeps a member's session alive and tells
// it (REBALANCE_IN_PROGRESS) when to rejoin.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleHeartbeat(rc *reqCtx, req *kmsg.HeartbeatRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	err := rc.groups().Heartbeat(rc.c.ctx, group.HeartbeatRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID), Generation: req.Generation,
	})
	resp.ErrorCode = groupErrorCode(err)
	return respond(resp), nil
}
