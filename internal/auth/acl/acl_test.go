package acl

import (
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func lit(rt kmsg.ACLResourceType, name, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: principal, Host: "*", Operation: op, Permission: perm}
}

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
)

func TestAuthorize(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kafka-acls.json")
	a, err := Open(path, []string{"admin", "User:root"})
	if err != nil {
		t.Fatal(err)
	}
	pre := lit(topic, "app-", "User:alice", kmsg.ACLOperationWrite, allow)
	pre.PatternType = kmsg.ACLResourcePatternTypePrefixed
	hosted := lit(topic, "h", "User:alice", kmsg.ACLOperationRead, allow)
	hosted.Host = "10.0.0.1"
	bs := []Binding{
		lit(topic, "t", "User:alice", kmsg.ACLOperationRead, allow),
		pre,
		lit(topic, "app-secret", "User:alice", kmsg.ACLOperationAll, deny),
		lit(topic, "*", "User:*", kmsg.ACLOperationDescribeConfigs, allow),
		lit(group, "g", "User:alice", kmsg.ACLOperationAlterConfigs, allow),
		hosted,
	}
	for _, b := range bs {
		if err := b.Validate(); err != nil {
			t.Fatalf("%+v: %v", b, err)
		}
	}
	if err := a.Create(bs); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"User:alice", "1.2.3.4", kmsg.ACLOperationRead, topic, "t", true},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, topic, "t", true}, // Read implies Describe
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "t", false},   // no ACL: deny
		{"User:bob", "1.2.3.4", kmsg.ACLOperationRead, topic, "t", false},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "app-x", true},    // prefixed
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, topic, "app-x", true}, // Write implies Describe
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "ap", false},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "app-secret", false}, // deny All wins
		{"User:bob", "1.2.3.4", kmsg.ACLOperationDescribeConfigs, topic, "any", true}, // User:* on *
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribeConfigs, group, "g", true}, // implied by AlterConfigs
		{"User:alice", "1.2.3.4", kmsg.ACLOperationRead, group, "g", false},
		{"User:alice", "10.0.0.1", kmsg.ACLOperationRead, topic, "h", true},
		{"User:alice", "10.0.0.2", kmsg.ACLOperationRead, topic, "h", false},
		{"User:admin", "1.2.3.4", kmsg.ACLOperationAlter, cluster, ClusterName, true}, // super users
		{"User:root", "1.2.3.4", kmsg.ACLOperationWrite, topic, "app-secret", true},
	}
	check := func(a *Authorizer) {
		t.Helper()
		for _, c := range cases {
			if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
				t.Errorf("%s from %s %s %s %q: %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
			}
		}
	}
	check(a)
	// Persisted: a new Authorizer over the same file decides alike.
	b, err := Open(path, []string{"admin", "User:root"})
	if err != nil {
		t.Fatal(err)
	}
	check(b)

	// Filters: MATCH finds every binding that applies to a resource.
	name := "app-x"
	got := b.Describe(Filter{ResourceType: topic, ResourceName: &name, PatternType: kmsg.ACLResourcePatternTypeMatch,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny})
	if len(got) != 2 { // the prefix app- and the literal wildcard *
		t.Fatalf("MATCH app-x: %+v", got)
	}
	alice := "User:alice"
	deleted, err := b.Delete([]Filter{{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Principal: &alice, Operation: kmsg.ACLOperationAny, Permission: deny}})
	if err != nil || len(deleted[0]) != 1 || deleted[0][0].ResourceName != "app-secret" {
		t.Fatalf("delete alice's deny: %+v %v", deleted, err)
	}
	c, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Authorize("User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topic, "app-secret") {
		t.Fatal("deletion not persisted: the deny still applies")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	bad := []Binding{
		lit(kmsg.ACLResourceTypeDelegationToken, "x", "User:a", kmsg.ACLOperationDescribe, allow),
		lit(kmsg.ACLResourceTypeAny, "x", "User:a", kmsg.ACLOperationDescribe, allow),
		lit(cluster, "other", "User:a", kmsg.ACLOperationAlter, allow),
		lit(topic, "", "User:a", kmsg.ACLOperationRead, allow),
		lit(topic, "t", "alice", kmsg.ACLOperationRead, allow),
		lit(topic, "t", "User:a", kmsg.ACLOperationAny, allow),
		lit(topic, "t", "User:a", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAny),
	}
	for _, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}
