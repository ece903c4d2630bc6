package kafka

// LeaveGroup, versions 0-5 (classic group protocol). v0-2 name one member; v3+ a batch of
// members, each by member id or (static members, admin removal) by group.instance.id, with a
// per-member error.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleLeaveGroup(rc *reqCtx, req *kmsg.LeaveGroupRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: grpDeref(m.InstanceID), Reason: grpDeref(m.Reason)})
		}
	}
	errs, err := rc.groups().Leave(rc.c.ctx, req.Group, members)
	if err != nil {
		resp.ErrorCode = groupErrorCode(err)
		return respond(resp), nil
	}
	if req.Version < 3 {
		resp.ErrorCode = groupErrorCode(errs[0])
		return respond(resp), nil
	}
	for i, m := range members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, grpOptStr(m.InstanceID), groupErrorCode(errs[i])
		resp.Members = append(resp.Members, rm)
	}
	return respond(resp), nil
}
