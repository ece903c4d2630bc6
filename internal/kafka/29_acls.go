package kafka

// DescribeAcls 0-3 (29), CreateAcls 0-3 (30), DeleteAcls 0-3 (31). yard has no authorizer
// yet, so each is answered SECURITY_DISABLED, as Kafka answers them when no authorizer is
// configured: a client (kafka-acls, an admin client) gets a clear error at once instead of a
// dropped connection.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const noAuthorizerMessage = "No Authorizer is configured on the broker: yard does not enforce ACLs yet"

func handleDescribeAcls(rc *reqCtx, req *kmsg.DescribeACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage)
	return respond(resp), nil
}

func handleCreateAcls(rc *reqCtx, req *kmsg.CreateACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage)
		resp.Results = append(resp.Results, r)
	}
	return respond(resp), nil
}

func handleDeleteAcls(rc *reqCtx, req *kmsg.DeleteACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage)
		resp.Results = append(resp.Results, r)
	}
	return respond(resp), nil
}
