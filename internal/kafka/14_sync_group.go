package kafka

// SyncGroup, versions 0-5 (classic group protocol). The leader sends every member's
// assignment; each member waits for its own, answered from the coordinator when the leader's
// arrives (the writer goroutine waits, as for JoinGroup). v5 checks protocol type and name.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleSyncGroup(rc *reqCtx, req *kmsg.SyncGroupRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	sr := group.SyncRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
		Generation: req.Generation, ProtocolType: grpDeref(req.ProtocolType), Protocol: grpDeref(req.Protocol),
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	wait := rc.groups().Sync(rc.c.ctx, sr)
	return &kmsgReply{resp: resp, before: func() {
		res := wait(rc.c.ctx)
		resp.ErrorCode = groupErrorCode(res.Err)
		if res.Err != nil {
			return
		}
		resp.ProtocolType, resp.Protocol = strPtr(res.ProtocolType), strPtr(res.Protocol)
		resp.MemberAssignment = res.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
	}}, nil
}
