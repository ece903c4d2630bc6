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
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
	}
	setErr := func(i int, code int16, msg *string) {
		resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
	}
	valid, validIdx, ok := aclAlterEntries(rc, len(req.Creations), setErr, func(i int) acl.Binding {
		c := req.Creations[i]
		b := acl.Binding{
			ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType,
		}
		if req.Version == 0 {
			b.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		return b
	})
	if ok && len(valid) > 0 {
		if err := rc.s.cfg.Authorizer.Create(valid); err != nil {
			rc.s.rl.Warn("kafka acls", "cannot create ACLs", "err", err)
			for _, i := range validIdx {
				setErr(i, kerr.UnknownServerError.Code, strPtr(err.Error()))
			}
		}
	}
	return respond(resp), nil
}

func handleDeleteAcls(rc *reqCtx, req *kmsg.DeleteACLsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	setErr := func(i int, code int16, msg *string) {
		resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
	}
	filters, idx, ok := aclAlterEntries(rc, len(req.Filters), setErr, func(i int) acl.Filter {
		rf := req.Filters[i]
		f := acl.Filter{
			ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType,
		}
		if req.Version == 0 {
			f.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		return f
	})
	if !ok || len(filters) == 0 {
		return respond(resp), nil
	}
	deleted, err := rc.s.cfg.Authorizer.Delete(filters)
	if err != nil {
		rc.s.rl.Warn("kafka acls", "cannot delete ACLs", "err", err)
		for _, i := range idx {
			setErr(i, kerr.UnknownServerError.Code, strPtr(err.Error()))
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

// aclAlterEntries is what CreateAcls and DeleteAcls share. Without an authorizer, or without
// Alter on the cluster, every one of the n entries carries the error (ok is false). Else each
// entry, as entry(i) makes it, is validated on its own: an invalid one is INVALID_REQUEST with
// the reason, and the valid ones are returned in order with their positions in the request.
func aclAlterEntries[V interface{ Validate() error }](rc *reqCtx, n int, setErr func(i int, code int16, msg *string), entry func(i int) V) (valid []V, idx []int, ok bool) {
	refuse := func(code int16, msg *string) ([]V, []int, bool) {
		for i := 0; i < n; i++ {
			setErr(i, code, msg)
		}
		return nil, nil, false
	}
	switch {
	case rc.s.cfg.Authorizer == nil:
		return refuse(kerr.SecurityDisabled.Code, strPtr(noAuthorizerMessage))
	case !rc.authorizedCluster(kmsg.ACLOperationAlter):
		return refuse(kerr.ClusterAuthorizationFailed.Code, nil)
	}
	for i := 0; i < n; i++ {
		v := entry(i)
		if err := v.Validate(); err != nil {
			setErr(i, kerr.InvalidRequest.Code, strPtr(err.Error()))
			continue
		}
		valid = append(valid, v)
		idx = append(idx, i)
	}
	return valid, idx, true
}
