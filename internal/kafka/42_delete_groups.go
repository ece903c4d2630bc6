package kafka

// DeleteGroups, versions 0-2: deletes empty groups and their committed offsets;
// NON_EMPTY_GROUP while a group has members, GROUP_ID_NOT_FOUND for an unknown one. The answer
// waits until the deletion is durable.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(rc *reqCtx, req *kmsg.DeleteGroupsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	denied := make([]bool, len(req.Groups))
	for i, id := range req.Groups {
		denied[i] = !rc.authorizedGroup(kmsg.ACLOperationDelete, id)
	}
	return &kmsgReply{resp: resp, before: func() {
		for i, id := range req.Groups {
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group = id
			if denied[i] {
				rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			} else if rc.groups() == nil {
				rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			} else {
				rg.ErrorCode = groupErrorCode(rc.groups().DeleteGroup(rc.c.ctx, id))
			}
			resp.Groups = append(resp.Groups, rg)
		}
	}}, nil
}
