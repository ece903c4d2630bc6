package acl

// Replication on a cluster node: the ACLs go through the cluster's metadata Raft group (wired
// by internal/broker) so that every node enforces the same ones. A change computes the whole
// next list and proposes it with the revision it was computed from:
//
//	{"op": "acls", "revision": <the ACLs' revision before>, "acls": [<binding>, ...]}
//
// Every node applies it only if its ACLs are at that revision (compare and set), so of two
// concurrent changes neither is lost: the second one committed is refused with ErrConflict
// everywhere and its proposer computes it again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/yardmq/yard/internal/auth"
)

// Replicator carries a command to every node of a cluster (the metadata group); Replicate
// returns once this node applied it, with the result of ApplyReplicated; an error wrapping
// auth.ErrUnknownOutcome makes the authorizer send the command again.
type Replicator interface {
	Replicate(ctx context.Context, cmd []byte) error
}

// ReplicatedOp is the "op" of the authorizer's commands in the metadata group.
const ReplicatedOp = "acls"

// ErrConflict refuses a replicated change computed from ACLs another change replaced.
var ErrConflict = errors.New("ACLs changed concurrently on another node")

type replCmd struct {
	Op       string    `json:"op"`
	Revision uint64    `json:"revision"`
	ACLs     []Binding `json:"acls"`
}

// replImage is the ACLs in the metadata group's snapshot.
type replImage struct {
	Revision uint64    `json:"revision"`
	ACLs     []Binding `json:"acls"`
}

// SetReplicator makes every later change go through r (once, before serving, on a cluster
// node).
func (a *Authorizer) SetReplicator(r Replicator) {
	a.mu.Lock()
	a.repl = r
	a.mu.Unlock()
}

func (a *Authorizer) replicator() Replicator {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.repl
}

// Revision is the number of replicated changes the ACLs hold (0: none yet).
func (a *Authorizer) Revision() uint64 {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.revision
}

func (a *Authorizer) changeReplicated(r Replicator, f func([]Binding) ([]Binding, [][]Binding)) ([][]Binding, error) {
	var out [][]Binding
	err := auth.RetryConflicts(ErrConflict, func() error {
		a.mu.RLock()
		cur, rev := slices.Clone(a.bindings), a.revision
		a.mu.RUnlock()
		var next []Binding
		next, out = f(cur)
		return a.propose(r, rev, next)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (a *Authorizer) propose(r Replicator, rev uint64, next []Binding) error {
	cmd, err := json.Marshal(replCmd{Op: ReplicatedOp, Revision: rev, ACLs: next})
	if err != nil {
		return fmt.Errorf("cannot encode kafka ACLs change: %w", err)
	}
	// Sent again while its outcome is unknown; a conflict then means the first sending
	// committed if the ACLs are now next at rev+1.
	err = auth.Resend(func(ctx context.Context) error { return r.Replicate(ctx, cmd) }, func() bool {
		a.mu.RLock()
		defer a.mu.RUnlock()
		return a.revision == rev+1 && slices.Equal(a.bindings, next)
	}, ErrConflict)
	if err != nil {
		return fmt.Errorf("cannot replicate kafka ACLs change: %w", err)
	}
	return nil
}

// Seed replicates this node's ACLs as the cluster's first revision if no replicated change
// happened yet (the metadata group's leader, once elected). ErrConflict: another node's came
// first.
func (a *Authorizer) Seed() error {
	r := a.replicator()
	if r == nil {
		return errors.New("cannot seed kafka ACLs: not a cluster node")
	}
	a.mu.RLock()
	cur, rev := slices.Clone(a.bindings), a.revision
	a.mu.RUnlock()
	if rev != 0 {
		return nil
	}
	return a.propose(r, 0, cur)
}

// ApplyReplicated applies a committed command of the metadata group. Its error is the
// proposer's result: ErrConflict if the ACLs moved since the command was computed.
func (a *Authorizer) ApplyReplicated(data []byte) error {
	var c replCmd
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("cannot decode kafka ACLs change: %w", err)
	}
	for _, b := range c.ACLs {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("cannot apply kafka ACLs change: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revision != c.Revision {
		return fmt.Errorf("%w: the ACLs are at revision %d, the change was made at %d; retry", ErrConflict, a.revision, c.Revision)
	}
	return a.installLocked(c.ACLs, c.Revision+1)
}

// ReplicatedState is the ACLs for the metadata group's snapshot.
func (a *Authorizer) ReplicatedState() ([]byte, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return json.Marshal(replImage{Revision: a.revision, ACLs: a.bindings})
}

// RestoreReplicated brings the ACLs to a snapshot's, unless this node holds a later revision.
func (a *Authorizer) RestoreReplicated(data []byte) error {
	var img replImage
	if err := json.Unmarshal(data, &img); err != nil {
		return fmt.Errorf("cannot decode kafka ACLs snapshot: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if img.Revision < a.revision || img.Revision == a.revision && slices.Equal(img.ACLs, a.bindings) {
		return nil
	}
	return a.installLocked(img.ACLs, img.Revision)
}

// installLocked makes next the ACLs at revision rev; the caller holds mu. A full disk changes
// nothing and returns the error (the entry is applied again later); another save failure is
// returned with next installed, as on every other node.
func (a *Authorizer) installLocked(next []Binding, rev uint64) error {
	err := a.save(next, rev)
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	a.bindings, a.revision = next, rev
	return err
}

// Adopt replaces the cluster's ACLs with those of an ACL file a single node wrote (its bytes),
// as the next replicated change (internal/broker adopt.go).
func (a *Authorizer) Adopt(aclsFile []byte) error {
	r := a.replicator()
	if r == nil {
		return errors.New("cannot adopt kafka ACLs: not a cluster node")
	}
	var f aclFile
	if err := json.Unmarshal(aclsFile, &f); err != nil {
		return fmt.Errorf("cannot adopt kafka ACLs: %w", err)
	}
	for _, b := range f.ACLs {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("cannot adopt kafka ACLs: %w", err)
		}
	}
	_, err := a.changeReplicated(r, func([]Binding) ([]Binding, [][]Binding) { return slices.Clone(f.ACLs), nil })
	return err
}
