package auth

// Replication on a cluster node: users, vhosts, permissions and limits go through the
// cluster's metadata Raft group (wired by internal/broker), so that every node holds the same
// store. A change computes its result on a copy of the state and proposes it whole, with the
// revision it was computed from:
//
//	{"op": "users", "revision": <the state's revision before>, "state": <the state after, revision+1>}
//
// Every node applies it only if its own state is at that revision (compare and set): of two
// concurrent changes the second one committed is refused with ErrConflict on every node, and
// its proposer computes it again from the new state. The state holds salted SCRAM
// credentials only, never a password. Login failure counters stay per node.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"syscall"
	"time"
)

// Replicator carries a command to every node of a cluster (the metadata group); Replicate
// returns once this node applied it, with the result of ApplyReplicated.
// An error wrapping ErrUnknownOutcome means the command may or may not commit (the leader
// changed, or there was none yet): the store sends it again, which is safe since a command
// applies only at its revision.
type Replicator interface {
	Replicate(ctx context.Context, cmd []byte) error
}

// ErrUnknownOutcome marks a Replicate error after which cmd may still commit, or may not have
// been accepted at all: sending it again is how to learn.
var ErrUnknownOutcome = errors.New("the change's outcome is unknown")

// ReplicatedOp is the "op" of the store's commands in the metadata group.
const ReplicatedOp = "users"

// ErrConflict refuses a replicated change computed from a state another change replaced.
var ErrConflict = errors.New("changed concurrently on another node")

const (
	// replicateTimeoutMs bounds the wait for a change to commit (no leader, no quorum).
	replicateTimeoutMs = 15_000
	// conflictRetries is how many times a change refused by ErrConflict is computed again.
	conflictRetries = 20
)

type replCmd struct {
	Op       string `json:"op"`
	Revision uint64 `json:"revision"`
	State    *state `json:"state"`
}

// SetReplicator makes every later change go through r (set once, before serving, on a
// cluster node).
func (s *Store) SetReplicator(r Replicator) {
	s.mu.Lock()
	s.repl = r
	s.mu.Unlock()
}

func (s *Store) replicator() Replicator {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.repl
}

// Revision is the number of replicated changes the store holds (0: none yet).
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Revision
}

// copyLocked is a deep copy of the state; the caller holds mu.
func (s *Store) copyLocked() (state, error) {
	var st state
	data, err := json.Marshal(&s.st)
	if err != nil {
		return st, fmt.Errorf("cannot copy users: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("cannot copy users: %w", err)
	}
	st.normalize()
	return st, nil
}

// updateReplicated is update on a cluster node: f runs on a copy, the result is proposed.
func (s *Store) updateReplicated(r Replicator, f func(st *state) error) error {
	return RetryConflicts(ErrConflict, func() error {
		s.mu.RLock()
		next, err := s.copyLocked()
		s.mu.RUnlock()
		if err != nil {
			return err
		}
		if err := f(&next); err != nil {
			return err
		}
		return s.propose(r, &next)
	})
}

// propose replicates next as the state following the revision it holds. A command whose
// outcome is unknown is sent again; refused then as a conflict, it was the first sending that
// committed if the store now holds exactly next.
func (s *Store) propose(r Replicator, next *state) error {
	from := next.Revision
	next.Revision = from + 1
	cmd, err := json.Marshal(replCmd{Op: ReplicatedOp, Revision: from, State: next})
	if err != nil {
		return fmt.Errorf("cannot encode users change: %w", err)
	}
	err = Resend(func(ctx context.Context) error { return r.Replicate(ctx, cmd) }, func() bool {
		return s.holds(next)
	}, ErrConflict)
	if err != nil {
		return fmt.Errorf("cannot replicate users change: %w", err)
	}
	return nil
}

// holds reports whether the store's state is exactly st.
func (s *Store) holds(st *state) bool {
	want, err := json.Marshal(st)
	if err != nil {
		return false
	}
	s.mu.RLock()
	got, err := json.Marshal(&s.st)
	s.mu.RUnlock()
	return err == nil && bytes.Equal(got, want)
}

// Resend runs send until its outcome is known, within replicateTimeoutMs: again after an
// ErrUnknownOutcome (pausing a little longer each time); an error wrapping conflict is no
// error if applied() reports that an earlier sending took effect. (Shared with the ACLs.)
func Resend(send func(context.Context) error, applied func() bool, conflict error) error {
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeoutMs*time.Millisecond)
	defer cancel()
	resent := false
	for attempt := 0; ; attempt++ {
		err := send(ctx)
		switch {
		case err == nil:
			return nil
		case resent && errors.Is(err, conflict) && applied():
			return nil
		case !errors.Is(err, ErrUnknownOutcome) || ctx.Err() != nil:
			return err
		}
		resent = true
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(min(attempt+1, 10)) * 50 * time.Millisecond):
		}
	}
}

// Seed replicates this node's state as the cluster's first (revision 1) if no replicated
// change happened yet: the metadata group's leader calls it once elected, so that nodes that
// started with their own users.json converge on the leader's. ErrConflict: another node's
// state was seeded (or changed) first.
func (s *Store) Seed() error {
	r := s.replicator()
	if r == nil {
		return errors.New("cannot seed users: not a cluster node")
	}
	s.mu.RLock()
	next, err := s.copyLocked()
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if next.Revision != 0 {
		return nil
	}
	return s.propose(r, &next)
}

// ApplyReplicated applies a committed command of the metadata group (on every node). Its
// error is the proposer's result: ErrConflict if the state moved since the command was
// computed (also when a node replays entries its users.json already holds).
func (s *Store) ApplyReplicated(data []byte) error {
	var c replCmd
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("cannot decode users change: %w", err)
	}
	if c.State == nil || c.State.Revision != c.Revision+1 {
		return errors.New("cannot apply users change: no state or a bad revision")
	}
	c.State.normalize()
	s.mu.Lock()
	if s.st.Revision != c.Revision {
		rev := s.st.Revision
		s.mu.Unlock()
		return fmt.Errorf("%w: the users are at revision %d, the change was made at %d; retry", ErrConflict, rev, c.Revision)
	}
	return s.replaceLocked(*c.State)
}

// ReplicatedState is the store's state for the metadata group's snapshot.
func (s *Store) ReplicatedState() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	data, err := json.Marshal(&s.st)
	if err != nil {
		return nil, fmt.Errorf("cannot encode users: %w", err)
	}
	return data, nil
}

// RestoreReplicated brings the store to a metadata group snapshot's state, unless this node
// holds a later revision (its users.json is ahead of a snapshot it restarts from: the entries
// after it are refused as already applied).
func (s *Store) RestoreReplicated(data []byte) error {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("cannot decode users snapshot: %w", err)
	}
	st.normalize()
	s.mu.Lock()
	if st.Revision < s.st.Revision || reflect.DeepEqual(st, s.st) {
		s.mu.Unlock()
		return nil
	}
	return s.replaceLocked(st)
}

// replaceLocked installs next, saves it and tells the watchers what changed; it unlocks mu.
// A full disk leaves the state as it was and returns the error (the metadata group applies
// the entry again later); another save failure keeps next in memory, as every other node
// holds it, and is logged: users.json is written again at the next change.
func (s *Store) replaceLocked(next state) error {
	old := s.st
	s.st = next
	if err := s.saveLocked(); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			s.st = old
			s.mu.Unlock()
			return err
		}
		s.log.Error("replicated users change applied but not saved", "err", err)
	}
	s.mu.Unlock()
	s.enqueue(diff(&old, &next))
	return nil
}

// enqueue hands events to the watchers from another goroutine, in order: the metadata
// group's apply loop must not run them (a watcher deleting a vhost's stream queues
// proposes to that group).
func (s *Store) enqueue(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.evMu.Lock()
	s.evQueue = append(s.evQueue, evs...)
	start := !s.evDelivering
	s.evDelivering = true
	s.evMu.Unlock()
	if start {
		go s.deliver()
	}
}

func (s *Store) deliver() {
	for {
		s.evMu.Lock()
		if len(s.evQueue) == 0 {
			s.evDelivering = false
			s.evMu.Unlock()
			return
		}
		e := s.evQueue[0]
		s.evQueue = s.evQueue[1:]
		s.evMu.Unlock()
		s.notify(e)
	}
}

// diff is the events that turn old into next: vhosts added, users changed (created, new
// credentials, tags, limits or permissions) or deleted, vhosts deleted.
func diff(old, next *state) []Event {
	var evs []Event
	for name := range next.Vhosts {
		if _, ok := old.Vhosts[name]; !ok {
			evs = append(evs, Event{Kind: "vhost-added", Name: name})
		}
	}
	changed := map[string]bool{}
	for name, u := range next.Users {
		if o, ok := old.Users[name]; !ok || !reflect.DeepEqual(o, u) {
			changed[name] = true
		}
	}
	for vh, ps := range next.Permissions {
		for user, p := range ps {
			if o, ok := old.Permissions[vh][user]; !ok || o != p {
				changed[user] = true
			}
		}
	}
	for vh, ps := range old.Permissions {
		for user := range ps {
			if _, ok := next.Permissions[vh][user]; !ok {
				changed[user] = true
			}
		}
	}
	for name := range old.Users {
		if _, ok := next.Users[name]; !ok {
			evs = append(evs, Event{Kind: "user-deleted", Name: name})
			delete(changed, name)
		}
	}
	for name := range changed {
		evs = append(evs, Event{Kind: "user-changed", Name: name})
	}
	for name := range old.Vhosts {
		if _, ok := next.Vhosts[name]; !ok {
			evs = append(evs, Event{Kind: "vhost-deleted", Name: name})
		}
	}
	return evs
}

// RetryConflicts runs change, a replicated change computed from the current state, again
// while it fails with conflict (another node's change committed first), at most
// conflictRetries more times, pausing a random while that grows with the attempts so that
// changes racing through several nodes do not keep colliding.
func RetryConflicts(conflict error, change func() error) error {
	for attempt := 0; ; attempt++ {
		err := change()
		if err == nil || !errors.Is(err, conflict) || attempt == conflictRetries {
			return err
		}
		time.Sleep(time.Duration(rand.Int64N(int64(attempt+1) * int64(5*time.Millisecond))))
	}
}

// Adopt replaces the cluster's users with those of a users.json a single node wrote (its
// bytes), as the next replicated change: a new cluster adopting that node's data takes its
// users, vhosts, permissions and limits (internal/broker adopt.go).
func (s *Store) Adopt(usersFile []byte) error {
	r := s.replicator()
	if r == nil {
		return errors.New("cannot adopt users: not a cluster node")
	}
	adopted, err := decode(usersFile)
	if err != nil {
		return fmt.Errorf("cannot adopt users: %w", err)
	}
	return s.updateReplicated(r, func(st *state) error {
		rev := st.Revision
		*st = adopted
		st.Revision = rev
		return nil
	})
}
