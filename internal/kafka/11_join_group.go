package kafka

// JoinGroup, versions 0-9 (classic group protocol). The coordinator answers once the
// rebalance completes, which may take up to the rebalance timeout; the handler returns at
// once and the connection's writer waits for that answer, so the reader keeps reading.
// v4+ (KIP-394): a first join without member id gets MEMBER_ID_REQUIRED and the id to use.
// v5+: static membership (group.instance.id). v9: SkipAssignment for a static leader.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleJoinGroup(rc *reqCtx, req *kmsg.JoinGroupRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.MemberID = -1, req.MemberID
	if !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	jr := group.JoinRequest{
		Group: req.Group, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
		ClientID: rc.hdr.clientID, ClientHost: rc.clientHost(), ProtocolType: req.ProtocolType,
		SessionTimeout:       grpMillis(req.SessionTimeoutMillis),
		RebalanceTimeout:     grpMillis(req.RebalanceTimeoutMillis),
		RequireKnownMemberID: req.Version >= 4,
		Reason:               grpDeref(req.Reason),
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wait := rc.groups().Join(rc.c.ctx, jr)
	return &kmsgReply{resp: resp, before: func() {
		res := wait(rc.c.ctx)
		resp.ErrorCode = groupErrorCode(res.Err)
		if res.MemberID != "" {
			resp.MemberID = res.MemberID
		}
		if res.Err != nil {
			return
		}
		resp.Generation = res.Generation
		resp.ProtocolType, resp.Protocol = strPtr(res.ProtocolType), strPtr(res.Protocol)
		resp.LeaderID, resp.SkipAssignment = res.Leader, res.SkipAssignment
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, grpOptStr(m.InstanceID), m.Metadata
			resp.Members = append(resp.Members, rm)
		}
	}}, nil
}
