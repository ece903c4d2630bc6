package kafka

// DescribeClientQuotas 0-1 (48) and AlterClientQuotas 0-1 (49). yard has no client quotas and
// throttles no one: a description is empty (no quota is set, which is true), and an alteration
// is refused with INVALID_REQUEST and a message saying so, rather than stored and ignored.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeClientQuotas(rc *reqCtx, req *kmsg.DescribeClientQuotasRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return respond(resp), nil
}

func handleAlterClientQuotas(rc *reqCtx, req *kmsg.AlterClientQuotasRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		out.ErrorCode = kerr.InvalidRequest.Code
		out.ErrorMessage = strPtr("client quotas are not supported: yard throttles no client")
		if !rc.authorizedCluster(kmsg.ACLOperationAlterConfigs) {
			out.ErrorCode, out.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, nil
		}
		for _, ent := range e.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = ent.Type, ent.Name
			out.Entity = append(out.Entity, oe)
		}
		resp.Entries = append(resp.Entries, out)
	}
	return respond(resp), nil
}
