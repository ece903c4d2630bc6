package kafka

// ListGroups, versions 0-5: every group this coordinator knows (with members, or with
// committed offsets only, as Empty). v4 filters by state, v5 by type ("classic", "consumer");
// both filters compare case-insensitively, as Kafka does.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(rc *reqCtx, req *kmsg.ListGroupsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if rc.groups() == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return respond(resp), nil
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	// As Kafka: Describe on the cluster lists every group, else the groups the principal
	// may Describe.
	all := rc.authorizedCluster(kmsg.ACLOperationDescribe)
	for _, l := range rc.groups().List(rc.c.ctx) {
		if !matches(req.StatesFilter, l.State.String()) || !matches(req.TypesFilter, l.Type) {
			continue
		}
		if !all && !rc.authorizedGroup(kmsg.ACLOperationDescribe, l.Group) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = l.Group, l.ProtocolType, l.State.String(), l.Type
		resp.Groups = append(resp.Groups, rg)
	}
	return respond(resp), nil
}
