package kafka

// DescribeAcls 0-3 (29), CreateAcls 0-3 (30), DeleteAcls 0-3 (31). Without an authorizer
// each is answered SECURITY_DISABLED, as Kafka answers them when no authorizer is configured.
// With the ACL authorizer (internal/auth/acl) they manage its bindings: DescribeAcls needs
// Describe on the cluster, CreateAcls and DeleteAcls need Alter on it (else
// CLUSTER_AUTHORIZATION_FAILED); a binding Kafka would refuse is INVALID_REQUEST with the
// reason. Versions 0 know only LITERAL patterns: a v0 filter is LITERAL, as in Kafka.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth/acl"
)

const noAuthorizerMessage = "No Authorizer is configured on the broker (start yard with --kafka-authorizer=acl)"

func handleDescribeAcls(rc *reqCtx, req *kmsg.DescribeACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	a := rc.s.cfg.Authorizer
	switch {
	case a == nil:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage)
		return respond(resp), nil
	case !rc.authorizedCluster(kmsg.ACLOperationDescribe):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp), nil
	}
	f := acl.Filter{
		ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType,
	}
	if req.Version == 0 {
		f.PatternType = kmsg.ACLResourcePatternTypeLiteral
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strPtr(err.Error())
		return respond(resp), nil
	}
	type key struct {
		rt   kmsg.ACLResourceType
		name string
		pt   kmsg.ACLResourcePatternType
	}
	index := map[key]int{}
	for _, b := range a.Describe(f) {
		k := key{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := index[k]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			index[k] = i
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, e)
	}
	return respond(resp), nil
}

func handleCreateAcls(rc *reqCtx, req *kmsg.CreateACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	a := rc.s.cfg.Authorizer
	fail := func(code int16, msg *string) {
		for range req.Creations {
			r := kmsg.NewCreateACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, msg
			resp.Results = append(resp.Results, r)
		}
	}
	switch {
	case a == nil:
		fail(kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage))
		return respond(resp), nil
	case !rc.authorizedCluster(kmsg.ACLOperationAlter):
		fail(kerr.ClusterAuthorizationFailed.Code, nil)
		return respond(resp), nil
	}
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	var valid []acl.Binding
	var validIdx []int
	for i, c := range req.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		b := acl.Binding{
			ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType,
		}
		if req.Version == 0 {
			b.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err := b.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, strPtr(err.Error())
			continue
		}
		valid = append(valid, b)
		validIdx = append(validIdx, i)
	}
	if len(valid) > 0 {
		if err := a.Create(valid); err != nil {
			rc.s.rl.Warn("kafka acls", "cannot create ACLs", "err", err)
			for _, i := range validIdx {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, strPtr(err.Error())
			}
		}
	}
	return respond(resp), nil
}

func handleDeleteAcls(rc *reqCtx, req *kmsg.DeleteACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	a := rc.s.cfg.Authorizer
	fail := func(code int16, msg *string) {
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, msg
			resp.Results = append(resp.Results, r)
		}
	}
	switch {
	case a == nil:
		fail(kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage))
		return respond(resp), nil
	case !rc.authorizedCluster(kmsg.ACLOperationAlter):
		fail(kerr.ClusterAuthorizationFailed.Code, nil)
		return respond(resp), nil
	}
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	var filters []acl.Filter
	var idx []int
	for i, rf := range req.Filters {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
		f := acl.Filter{
			ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType,
		}
		if req.Version == 0 {
			f.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		if err := f.Validate(); err != nil {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.InvalidRequest.Code, strPtr(err.Error())
			continue
		}
		filters = append(filters, f)
		idx = append(idx, i)
	}
	if len(filters) == 0 {
		return respond(resp), nil
	}
	deleted, err := a.Delete(filters)
	if err != nil {
		rc.s.rl.Warn("kafka acls", "cannot delete ACLs", "err", err)
		for _, i := range idx {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, strPtr(err.Error())
		}
		return respond(resp), nil
	}
	for j, i := range idx {
		for _, b := range deleted[j] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = b.ResourceType, b.ResourceName, b.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, b.Operation, b.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
	}
	return respond(resp), nil
}
