package auth

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memGroup is a metadata group in memory: a command is applied to every member in order,
// the proposer's result is its own member's.
type memGroup struct {
	mu      sync.Mutex
	members []*Store
	log     [][]byte
	hold    func() // called before a command is applied, if set (the lock is not held)
}

type memReplicator struct {
	g    *memGroup
	self int
}

func (r memReplicator) Replicate(_ context.Context, cmd []byte) error {
	if r.g.hold != nil {
		r.g.hold()
	}
	r.g.mu.Lock()
	defer r.g.mu.Unlock()
	r.g.log = append(r.g.log, cmd)
	var mine error
	for i, s := range r.g.members {
		if err := s.ApplyReplicated(cmd); i == r.self {
			mine = err
		}
	}
	return mine
}

func openMembers(t *testing.T, n int) (*memGroup, []*Store) {
	g := &memGroup{}
	for i := range n {
		s, err := Open(Options{Path: filepath.Join(t.TempDir(), "users.json"), Iterations: 4096})
		if err != nil {
			t.Fatal(err)
		}
		s.SetReplicator(memReplicator{g, i})
		g.members = append(g.members, s)
	}
	return g, g.members
}

func TestReplicatedStoreConverges(t *testing.T) {
	t.Parallel()
	g, ss := openMembers(t, 3)
	if err := ss[1].Seed(); err != nil {
		t.Fatal(err)
	}
	if err := ss[2].Seed(); err != nil { // already seeded: nothing to do
		t.Fatal(err)
	}
	a, _ := ss[0].Credential("guest", ScramSHA256)
	b, _ := ss[1].Credential("guest", ScramSHA256)
	if !bytes.Equal(a.Salt, b.Salt) || ss[0].Revision() != 1 {
		t.Fatalf("guest differs after the seed (revision %d)", ss[0].Revision())
	}

	deleted := make(chan string, 1)
	ss[2].Watch(func(e Event) {
		if e.Kind == "user-deleted" {
			deleted <- e.Name
		}
	})
	pw := "alice-secret"
	if _, err := ss[0].PutUser("alice", &pw, []string{"management"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ss[2].CheckPassword("alice", pw); err != nil {
		t.Fatalf("alice on another member: %v", err)
	}
	if err := ss[1].DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-deleted: // the watchers of every member learn it
		if name != "alice" {
			t.Fatalf("deleted %q", name)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no user-deleted event on another member")
	}
	for _, cmd := range g.log {
		if bytes.Contains(cmd, []byte(pw)) {
			t.Fatalf("a replicated command holds a password: %s", cmd)
		}
	}

	// A member restarting from its users.json is at the same revision; an older snapshot
	// does not take it back.
	old, _ := ss[0].ReplicatedState()
	if err := ss[0].AddVhost("v", ""); err != nil {
		t.Fatal(err)
	}
	if err := ss[0].RestoreReplicated(old); err != nil || !ss[0].HasVhost("v") {
		t.Fatalf("an older snapshot replaced a newer state: %v", err)
	}
}

// A change computed from a state another change replaced is refused, then computed again:
// both survive.
func TestReplicatedStoreConflict(t *testing.T) {
	t.Parallel()
	g, ss := openMembers(t, 2)
	// The first proposal waits until the second one committed.
	var first atomic.Bool
	release := make(chan struct{})
	g.hold = func() {
		if first.Swap(true) {
			return
		}
		go func() {
			pw := "bob-pw"
			if _, err := ss[1].PutUser("bob", &pw, nil); err != nil {
				t.Error(err)
			}
			close(release)
		}()
		<-release
	}
	pw := "carol-pw"
	if _, err := ss[0].PutUser("carol", &pw, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		for _, u := range []string{"bob", "carol"} {
			if _, ok := s.User(u); !ok {
				t.Errorf("%s lost", u)
			}
		}
	}
	if ss[0].Revision() != 2 {
		t.Fatalf("revision %d, want 2", ss[0].Revision())
	}
	// The refused command itself.
	next, _ := ss[0].ReplicatedState()
	err := ss[0].ApplyReplicated(append([]byte(`{"op":"users","revision":0,"state":`), append(bytesReplace(next, `"revision":2`, `"revision":1`), '}')...))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("stale change: %v, want ErrConflict", err)
	}
}

func bytesReplace(b []byte, old, new string) []byte {
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// flakyReplicator reports the outcome of its first command unknown, after applying it or not.
type flakyReplicator struct {
	inner   memReplicator
	apply   bool
	mu      sync.Mutex
	reports int
}

func (f *flakyReplicator) Replicate(ctx context.Context, cmd []byte) error {
	f.mu.Lock()
	f.reports++
	first := f.reports == 1
	f.mu.Unlock()
	if !first {
		return f.inner.Replicate(ctx, cmd)
	}
	if f.apply {
		_ = f.inner.Replicate(ctx, cmd)
	}
	return ErrUnknownOutcome
}

// A change whose outcome was unknown (the leader changed) is sent again: applied once either
// way, and reported as done.
func TestReplicatedStoreUnknownOutcome(t *testing.T) {
	t.Parallel()
	for _, applied := range []bool{false, true} {
		g, ss := openMembers(t, 2)
		f := &flakyReplicator{inner: memReplicator{g, 0}, apply: applied}
		ss[0].SetReplicator(f)
		if err := ss[0].DeleteUser("guest"); err != nil {
			t.Fatalf("applied %v: %v", applied, err)
		}
		if _, ok := ss[1].User("guest"); ok || ss[1].Revision() != 1 || f.reports != 2 {
			t.Fatalf("applied %v: guest still there, or revision %d, or %d sendings", applied, ss[1].Revision(), f.reports)
		}
	}
}
