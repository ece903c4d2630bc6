package broker

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/yardmq/yard/internal/auth/acl"
)

// startSecureNodes runs n nodes serving Kafka over SASL_PLAINTEXT with the ACL authorizer
// (guest, the default user, is a super user), the metadata group snapshotting every 8 entries.
func startSecureNodes(t *testing.T, n int) *testNodes {
	return startNodesConfig(t, n, &[3]uint64{8, 2, 400}, func(_ int, cfg *Config) {
		cfg.KafkaListen = "SASL_PLAINTEXT://" + cfg.KafkaListen
		cfg.Kafka.Authorizer = "acl"
		cfg.Kafka.SuperUsers = []string{"guest"}
	})
}

// login connects to node i as user and reports whether the broker accepted the password.
func (c *testNodes) login(i int, user, pass string) error {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[i]), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()),
		kgo.RequestRetries(0))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func (c *testNodes) saslClient(i int, user, pass string, opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(c.kafka[i]), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// waitUsers waits until every running node holds the same users as node i.
func (c *testNodes) waitUsers(i int) {
	c.t.Helper()
	waitFor(c.t, "the users to reach every node", func() bool {
		want, _ := c.broker[i].users.ReplicatedState()
		for _, b := range c.broker {
			if b == nil {
				continue
			}
			if got, _ := b.users.ReplicatedState(); !bytes.Equal(got, want) {
				return false
			}
		}
		return true
	})
}

func (c *testNodes) waitACLs(i int) {
	c.t.Helper()
	waitFor(c.t, "the ACLs to reach every node", func() bool {
		want, _ := c.broker[i].authz.ReplicatedState()
		for _, b := range c.broker {
			if b == nil {
				continue
			}
			if got, _ := b.authz.ReplicatedState(); !bytes.Equal(got, want) {
				return false
			}
		}
		return true
	})
}

func TestClusterReplicatesUsersAndACLs(t *testing.T) {
	t.Parallel()
	c := startSecureNodes(t, 3)
	ctx := context.Background()

	// Every node started with its own guest (its own salt): they converge on one.
	waitFor(t, "the users to be seeded", func() bool { return c.broker[0].users.Revision() > 0 })
	c.waitUsers(0)

	// A user created through node 1 logs in on node 3.
	pw := "alice-secret"
	if _, err := c.broker[0].users.PutUser("alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice on node 3", func() bool { _, ok := c.broker[2].users.User("alice"); return ok })
	if err := c.login(2, "alice", pw); err != nil {
		t.Fatalf("alice cannot log in on node 3: %v", err)
	}

	// A password changed on node 2: the old one fails on node 1.
	if err := c.broker[1].users.SetPassword("alice", "alice-new"); err != nil {
		t.Fatal(err)
	}
	c.waitUsers(1)
	if err := c.login(0, "alice", pw); err == nil {
		t.Fatal("alice's old password still works on node 1")
	}
	if err := c.login(0, "alice", "alice-new"); err != nil {
		t.Fatalf("alice's new password fails on node 1: %v", err)
	}

	// An ACL created through node 1 is enforced on node 2.
	guest := kadm.NewClient(c.saslClient(0, "guest", "guest"))
	retry(t, func() error {
		r, err := guest.CreateTopic(ctx, 1, 3, nil, "orders")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("orders", "", "")
	alice := c.saslClient(1, "alice", "alice-new", kgo.DisableIdempotentWrite(), kgo.RequestRetries(0), kgo.RecordRetries(3))
	produce := func() error {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return alice.ProduceSync(pctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr()
	}
	if err := produce(); err == nil {
		t.Fatal("alice produced without an ACL")
	}
	res, err := guest.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c.waitACLs(0)
	if err := produce(); err != nil {
		t.Fatalf("alice cannot produce on node 2 with an ACL created through node 1: %v", err)
	}

	// A user deleted through node 1 loses its connection to node 3, as on a single node.
	davePw := "dave-secret"
	if _, err := c.broker[0].users.PutUser("dave", &davePw, nil); err != nil {
		t.Fatal(err)
	}
	c.waitUsers(0)
	dave := c.saslClient(2, "dave", davePw)
	if err := dave.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	daveConns := func() (n int) {
		for _, ci := range c.broker[2].conns.List() {
			if ci.User == "dave" {
				n++
			}
		}
		return n
	}
	waitFor(t, "dave's connection on node 3", func() bool { return daveConns() > 0 })
	if err := c.broker[0].users.DeleteUser("dave"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 3 to close the deleted user's connection", func() bool { return daveConns() == 0 })

	// A node down during changes catches up when it restarts (by a snapshot: more changes
	// than the metadata group keeps).
	c.stop(2)
	bobPw := "bob-secret"
	if _, err := c.broker[0].users.PutUser("bob", &bobPw, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.broker[1].users.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := c.broker[i%2].users.AddVhost(fmt.Sprintf("vh-%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.broker[0].authz.Delete([]acl.Filter{anyACL()}); err != nil {
		t.Fatal(err)
	}
	c.start(2)
	c.waitUsers(0)
	c.waitACLs(0)
	if _, ok := c.broker[2].users.User("alice"); ok {
		t.Fatal("alice, deleted while node 3 was down, is back on node 3")
	}
	if err := c.login(2, "bob", bobPw); err != nil {
		t.Fatalf("bob, created while node 3 was down, cannot log in there: %v", err)
	}
	if n := len(c.broker[2].authz.Describe(anyACL())); n != 0 {
		t.Fatalf("node 3 has %d ACLs, want none", n)
	}
}

func anyACL() acl.Filter {
	return acl.Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
}

// Concurrent changes through different nodes all survive: one computed from a state another
// replaced is refused and computed again, never applied over it.
func TestClusterConcurrentUserChanges(t *testing.T) {
	t.Parallel()
	c := startSecureNodes(t, 3)
	waitFor(t, "the users to be seeded", func() bool { return c.broker[0].users.Revision() > 0 })
	const perWriter = 6
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter)
	for w := range 4 {
		wg.Go(func() {
			b := c.broker[w%3]
			for j := range perWriter {
				pw := fmt.Sprintf("pw-%d-%d", w, j)
				if _, err := b.users.PutUser(fmt.Sprintf("u-%d-%d", w, j), &pw, nil); err != nil {
					errs <- err
				}
				err := b.authz.Create([]acl.Binding{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: fmt.Sprintf("t-%d-%d", w, j),
					PatternType: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:x", Host: "*",
					Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.waitUsers(0)
	c.waitACLs(0)
	for i, b := range c.broker {
		for w := range 4 {
			for j := range perWriter {
				if _, ok := b.users.User(fmt.Sprintf("u-%d-%d", w, j)); !ok {
					t.Errorf("node %d lacks user u-%d-%d", i+1, w, j)
				}
			}
		}
		if n := len(b.authz.Describe(anyACL())); n != 4*perWriter {
			t.Errorf("node %d has %d ACLs, want %d", i+1, n, 4*perWriter)
		}
	}
	// No file of any node (the Raft log, snapshots, users.json) holds a password.
	for _, dir := range c.dirs {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte("pw-1-2")) {
				t.Errorf("%s holds a plaintext password", path)
			}
			return nil
		})
	}
}
