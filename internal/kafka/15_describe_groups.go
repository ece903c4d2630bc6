package kafka

// DescribeGroups, versions 0-6. Members' metadata and assignments are the bytes the members
// sent (ConsumerProtocol bytes for protocol type "consumer"), present while the group is
// Stable, as in Kafka. An unknown group is state "Dead" with no error, at every version: the
// Java admin client (and so kafka-consumer-groups, which then says "Consumer group 'G' does
// not exist.") turns a GROUP_ID_NOT_FOUND here into an exception.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

func handleDescribeGroups(rc *reqCtx, req *kmsg.DescribeGroupsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group, rg.AuthorizedOperations = id, authorizedOperationsNone
		if !rc.authorizedGroup(kmsg.ACLOperationDescribe, id) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		if rc.groups() == nil {
			rg.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, err := rc.groups().Describe(rc.c.ctx, id)
		rg.State = d.State.String()
		if err != nil && err != group.ErrGroupIDNotFound {
			rg.ErrorCode = groupErrorCode(err)
		}
		rg.ProtocolType, rg.Protocol = d.ProtocolType, d.Protocol
		if req.IncludeAuthorizedOperations && rg.ErrorCode == 0 {
			rg.AuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeGroup, id)
		}
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, grpOptStr(m.InstanceID), m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = nonNil(m.Metadata), nonNil(m.Assignment)
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	return respond(resp), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
