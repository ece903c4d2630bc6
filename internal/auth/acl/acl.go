// Package acl is yard's Kafka ACL authorizer, with the semantics of Kafka's
// StandardAuthorizer: ACL bindings (resource pattern, principal, host, operation, allow or
// deny) persisted atomically in the data directory, and the one decision "may this principal,
// from this host, perform this operation on this resource".
//
// Decision, as Kafka's: a super user may do everything. Otherwise the ACLs whose resource
// pattern matches the resource (a LITERAL pattern of the same name or of the wildcard "*",
// or a PREFIXED pattern the name starts with), whose principal is the principal or the
// wildcard "User:*" and whose host is the host or "*" are considered: any DENY for the
// operation (or for ALL) denies; else any ALLOW for the operation, for ALL, or for an
// operation implying it (Read, Write, Delete and Alter imply Describe; AlterConfigs implies
// DescribeConfigs) allows; else the request is denied (allow.everyone.if.no.acl.found=false).
//
// Resource types are topic, group, cluster and transactional id; delegation tokens and users
// are refused at creation, since yard has neither.
package acl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/atomicfile"
)

// ClusterName is the name of the one CLUSTER resource, as in Kafka.
const ClusterName = "kafka-cluster"

// Wildcards, as Kafka writes them.
const (
	WildcardResource  = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
)

// Binding is one ACL.
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"` // "User:alice", "User:*"
	Host         string                      `json:"host"`      // an address or "*"
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// Filter selects bindings (DescribeAcls, DeleteAcls). A nil string matches any; the enum
// fields take their ANY values; PatternType MATCH selects every binding that applies to
// the named resource (literal, wildcard and prefixes).
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// ErrInvalid marks a binding or filter Kafka would refuse as INVALID_REQUEST.
var ErrInvalid = errors.New("invalid ACL")

// Validate checks a binding to be created, as Kafka's CreateAcls does.
func (b Binding) Validate() error {
	switch b.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster, kmsg.ACLResourceTypeTransactionalId:
	case kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: resource type %s is not supported: yard has no delegation tokens", ErrInvalid, b.ResourceType)
	default:
		return fmt.Errorf("%w: resource type %s", ErrInvalid, b.ResourceType)
	}
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return fmt.Errorf("%w: pattern type %s (want LITERAL or PREFIXED)", ErrInvalid, b.PatternType)
	}
	if b.ResourceName == "" {
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	}
	if b.ResourceType == kmsg.ACLResourceTypeCluster && (b.ResourceName != ClusterName || b.PatternType != kmsg.ACLResourcePatternTypeLiteral) {
		return fmt.Errorf("%w: the only valid name for the CLUSTER resource is %s", ErrInvalid, ClusterName)
	}
	if b.PatternType == kmsg.ACLResourcePatternTypePrefixed && b.ResourceName == WildcardResource {
		return fmt.Errorf("%w: a PREFIXED pattern cannot be the wildcard", ErrInvalid)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: principal %q (want Type:Name, e.g. User:alice)", ErrInvalid, b.Principal)
	}
	if b.Host == "" {
		return fmt.Errorf("%w: empty host (use * for any)", ErrInvalid)
	}
	if b.Operation < kmsg.ACLOperationAll || b.Operation > kmsg.ACLOperationDescribeTokens {
		return fmt.Errorf("%w: operation %s", ErrInvalid, b.Operation)
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return fmt.Errorf("%w: permission type %s", ErrInvalid, b.Permission)
	}
	return nil
}

// Validate checks a filter (DescribeAcls, DeleteAcls).
func (f Filter) Validate() error {
	if f.ResourceType <= kmsg.ACLResourceTypeUnknown || f.ResourceType > kmsg.ACLResourceTypeUser {
		return fmt.Errorf("%w: resource type %s", ErrInvalid, f.ResourceType)
	}
	if f.PatternType <= kmsg.ACLResourcePatternTypeUnknown || f.PatternType > kmsg.ACLResourcePatternTypePrefixed {
		return fmt.Errorf("%w: pattern type %s", ErrInvalid, f.PatternType)
	}
	if f.Operation <= kmsg.ACLOperationUnknown || f.Operation > kmsg.ACLOperationDescribeTokens {
		return fmt.Errorf("%w: operation %s", ErrInvalid, f.Operation)
	}
	if f.Permission <= kmsg.ACLPermissionTypeUnknown || f.Permission > kmsg.ACLPermissionTypeAllow {
		return fmt.Errorf("%w: permission type %s", ErrInvalid, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects b (Kafka's AclBindingFilter.matches).
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		if f.ResourceName != nil && *f.ResourceName != b.ResourceName {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName != nil && !patternApplies(b, *f.ResourceName) {
			return false
		}
	default:
		if f.PatternType != b.PatternType || f.ResourceName != nil && *f.ResourceName != b.ResourceName {
			return false
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission
}

// patternApplies reports whether b's resource pattern covers a resource named name.
func patternApplies(b Binding, name string) bool {
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.ResourceName == name || b.ResourceName == WildcardResource
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// implies reports whether an ALLOW for granted allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	switch {
	case granted == op, granted == kmsg.ACLOperationAll:
		return true
	case op == kmsg.ACLOperationDescribe:
		return granted == kmsg.ACLOperationRead || granted == kmsg.ACLOperationWrite ||
			granted == kmsg.ACLOperationDelete || granted == kmsg.ACLOperationAlter
	case op == kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// Authorizer holds the ACLs and decides. Safe for concurrent use.
type Authorizer struct {
	path       string          // "" keeps the ACLs in memory only (tests)
	superUsers map[string]bool // principals, "User:alice"

	mu       sync.RWMutex // guards bindings and revision; writers also hold it across the file write
	bindings []Binding
	revision uint64     // replicated changes held (replicate.go); 0 on a single node
	repl     Replicator // set once before serving on a cluster node
}

// SuperUserPrincipal turns a --super-users entry into a principal: "alice" and "User:alice"
// both name User:alice.
func SuperUserPrincipal(s string) string {
	if strings.Contains(s, ":") {
		return s
	}
	return "User:" + s
}

// Open loads the ACLs of path (a missing file is no ACLs). superUsers are principals or bare
// user names.
func Open(path string, superUsers []string) (*Authorizer, error) {
	a := &Authorizer{path: path, superUsers: map[string]bool{}}
	for _, s := range superUsers {
		if s = strings.TrimSpace(s); s != "" {
			a.superUsers[SuperUserPrincipal(s)] = true
		}
	}
	if path == "" {
		return a, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read kafka ACLs: %w", err)
	}
	var f aclFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot parse kafka ACLs %s: %w", path, err)
	}
	for _, b := range f.ACLs {
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("cannot load kafka ACLs %s: %w", path, err)
		}
	}
	a.bindings, a.revision = f.ACLs, f.Revision
	return a, nil
}

// aclFile is the file's format.
type aclFile struct {
	Version int `json:"version"`
	// Revision counts the changes replicated through a cluster's metadata group.
	Revision uint64    `json:"revision,omitempty"`
	ACLs     []Binding `json:"acls"`
}

// save writes bindings at revision rev; the caller holds mu.
func (a *Authorizer) save(bindings []Binding, rev uint64) error {
	if a.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(aclFile{Version: 1, Revision: rev, ACLs: bindings}, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode kafka ACLs: %w", err)
	}
	if err := atomicfile.Write(a.path, data, 0o600); err != nil {
		return fmt.Errorf("cannot write kafka ACLs: %w", err)
	}
	return nil
}

// Create adds bindings (each already validated); one that exists already is not added
// twice. It returns once they are durable.
func (a *Authorizer) Create(bs []Binding) error {
	_, err := a.change(func(cur []Binding) ([]Binding, [][]Binding) {
		next := slices.Clone(cur)
		for _, b := range bs {
			if !slices.Contains(next, b) {
				next = append(next, b)
			}
		}
		return next, nil
	})
	return err
}

// Describe returns the bindings f selects.
func (a *Authorizer) Describe(f Filter) []Binding {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []Binding
	for _, b := range a.bindings {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	return out
}

// Delete removes the bindings each filter selects and returns them, per filter. It returns
// once the removal is durable.
func (a *Authorizer) Delete(fs []Filter) ([][]Binding, error) {
	return a.change(func(cur []Binding) ([]Binding, [][]Binding) {
		out := make([][]Binding, len(fs))
		var next []Binding
		for _, b := range cur {
			keep := true
			for i, f := range fs {
				if f.Matches(b) {
					out[i] = append(out[i], b)
					keep = false
				}
			}
			if keep {
				next = append(next, b)
			}
		}
		return next, out
	})
}

// change computes the next bindings from the current ones and makes them durable: saved
// here, or on a cluster node replicated (replicate.go). It returns f's result.
func (a *Authorizer) change(f func(cur []Binding) (next []Binding, result [][]Binding)) ([][]Binding, error) {
	if r := a.replicator(); r != nil {
		return a.changeReplicated(r, f)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	next, out := f(a.bindings)
	if err := a.save(next, a.revision); err != nil {
		return nil, err
	}
	a.bindings = next
	return out, nil
}

// Authorize decides whether principal ("User:alice"), connected from host, may perform op on
// the resource (rt, name).
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	allowed := false
	for _, b := range a.bindings {
		if b.ResourceType != rt || !patternApplies(b, name) ||
			b.Principal != principal && b.Principal != WildcardPrincipal ||
			b.Host != host && b.Host != WildcardHost {
			continue
		}
		switch b.Permission {
		case kmsg.ACLPermissionTypeDeny:
			if b.Operation == op || b.Operation == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			allowed = allowed || implies(b.Operation, op)
		}
	}
	return allowed
}

// AuthorizeAny reports whether principal, from host, may perform op on at least one resource
// of type rt (Kafka's authorizeByResourceType, used by InitProducerId): a super user may; else
// an ALLOW binding for it must exist and no DENY for it on the wildcard resource.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	allowed := false
	for _, b := range a.bindings {
		if b.ResourceType != rt || b.Principal != principal && b.Principal != WildcardPrincipal ||
			b.Host != host && b.Host != WildcardHost {
			continue
		}
		switch b.Permission {
		case kmsg.ACLPermissionTypeDeny:
			if (b.Operation == op || b.Operation == kmsg.ACLOperationAll) &&
				b.PatternType == kmsg.ACLResourcePatternTypeLiteral && b.ResourceName == WildcardResource {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			allowed = allowed || implies(b.Operation, op)
		}
	}
	return allowed
}
