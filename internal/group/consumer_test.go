package group

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func hb(t *testing.T, c *Coordinator, req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	t.Helper()
	req.Group = "g"
	res := c.ConsumerHeartbeat(ctx, req)
	if res.Err != nil {
		t.Fatalf("heartbeat %+v: %v", req, res.Err)
	}
	return res
}

func parts(tps []TopicPartition) string { return fmt.Sprint(tps) }

// TestConsumerGroupRevokesBeforeReassigning walks two KIP-848 members through a rebalance:
// the newcomer gets partitions only after the old owner acknowledged their revocation.
func TestConsumerGroupRevokesBeforeReassigning(t *testing.T) {
	t.Parallel()
	for _, assignor := range []string{AssignorUniform, AssignorRange} {
		t.Run(assignor, func(t *testing.T) {
			c := openTest(t, t.TempDir(), nil)
			asg := assignor
			a := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", SubscribedTopics: []string{"t"}, ServerAssignor: &asg, OwnedSet: true})
			if !a.AssignmentSet || len(a.Assignment) != 3 {
				t.Fatalf("a alone: %+v", a)
			}
			aOwned := a.Assignment
			b := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", SubscribedTopics: []string{"t"}, OwnedSet: true})
			if len(b.Assignment) != 0 {
				t.Fatalf("b got partitions a still holds: %v", parts(b.Assignment))
			}
			d, err := c.Describe(ctx, "g")
			if err != nil || d.State != StateReconciling || d.Type != TypeConsumer {
				t.Fatalf("describe while reconciling: %+v %v", d, err)
			}
			// a is told to give some up; its epoch stays until it acknowledges.
			a2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: aOwned, OwnedSet: true})
			if !a2.AssignmentSet || len(a2.Assignment) >= 3 || a2.MemberEpoch != a.MemberEpoch {
				t.Fatalf("a revocation: %+v", a2)
			}
			// b still gets nothing while a holds them.
			b2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: b.MemberEpoch, Owned: nil, OwnedSet: true})
			if len(b2.Assignment) != 0 {
				t.Fatalf("b before a acknowledged: %v", parts(b2.Assignment))
			}
			// a acknowledges (owns only what is left): it moves to the new epoch.
			a3 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a2.Assignment, OwnedSet: true})
			if a3.MemberEpoch <= a.MemberEpoch {
				t.Fatalf("a after acknowledging: %+v", a3)
			}
			// KIP-1251: a commit at a's epoch before the bump is still accepted for a partition
			// a has held since then, not for one it gave up.
			kept := map[TopicPartition]OffsetValue{a2.Assignment[0]: {Offset: 3}}
			if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: "a", Generation: a.MemberEpoch, Offsets: kept}); err != nil {
				t.Fatalf("commit of a kept partition at the previous epoch: %v", err)
			}
			for _, tp := range aOwned {
				if !slices.Contains(a2.Assignment, tp) {
					lost := map[TopicPartition]OffsetValue{tp: {Offset: 3}}
					if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: "a", Generation: a.MemberEpoch, Offsets: lost}); !errors.Is(err, ErrStaleMemberEpoch) {
						t.Fatalf("commit of a revoked partition at the previous epoch: %v", err)
					}
				}
			}
			b3 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: b2.MemberEpoch, OwnedSet: true, Owned: []TopicPartition{}})
			if !b3.AssignmentSet || len(b3.Assignment)+len(a2.Assignment) != 3 {
				t.Fatalf("b after a acknowledged: %+v (a keeps %v)", b3, parts(a2.Assignment))
			}
			for _, tp := range b3.Assignment {
				for _, o := range a2.Assignment {
					if tp == o {
						t.Fatalf("%v owned by both", tp)
					}
				}
			}
			d, _ = c.Describe(ctx, "g")
			if d.State != StateStable || len(d.Members) != 2 {
				t.Fatalf("describe when converged: %+v", d)
			}
			// Wrong epoch: fenced. Commits must carry the member's epoch.
			if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: b3.MemberEpoch + 5}); !errors.Is(r.Err, ErrFencedMemberEpoch) {
				t.Fatalf("wrong epoch: %v", r.Err)
			}
			offs := map[TopicPartition]OffsetValue{b3.Assignment[0]: {Offset: 1}}
			if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: "b", Generation: b3.MemberEpoch - 1, Offsets: offs}); !errors.Is(err, ErrStaleMemberEpoch) {
				t.Fatalf("stale epoch commit: %v", err)
			}
			if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: "b", Generation: b3.MemberEpoch, Offsets: offs}); err != nil {
				t.Fatalf("commit: %v", err)
			}
			// A classic member cannot join a consumer group.
			if r := c.Join(ctx, joinReq("", "", 60e9, "range"))(ctx); !errors.Is(r.Err, ErrInconsistentProtocol) {
				t.Fatalf("classic join into a consumer group: %v", r.Err)
			}
			// a leaves: b ends up with everything.
			hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: -1})
			b4 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: b3.MemberEpoch, Owned: b3.Assignment, OwnedSet: true})
			if len(b4.Assignment) != 3 {
				t.Fatalf("b after a left: %+v", b4)
			}
			hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: -1})
			if d, _ := c.Describe(ctx, "g"); d.State != StateEmpty {
				t.Fatalf("state after both left: %v", d.State)
			}
		})
	}
}

func TestConsumerHeartbeatErrors(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	bad := "cooperative"
	if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "m", SubscribedTopics: []string{"t"}, ServerAssignor: &bad}); !errors.Is(r.Err, ErrUnsupportedAssignor) {
		t.Fatalf("unknown assignor: %v", r.Err)
	}
	if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: 3}); !errors.Is(r.Err, ErrUnknownMemberID) {
		t.Fatalf("unknown member: %v", r.Err)
	}
	if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "m"}); !errors.Is(r.Err, ErrInvalidRequest) {
		t.Fatalf("join without subscription: %v", r.Err)
	}
	if _, err := c.DescribeConsumerGroup(ctx, "nope"); !errors.Is(err, ErrGroupIDNotFound) {
		t.Fatalf("describe unknown: %v", err)
	}
}

func TestAssignors(t *testing.T) {
	members := map[string]*consumerMember{
		"a": {id: "a", effective: []string{"x", "y"}},
		"b": {id: "b", effective: []string{"x"}},
		"c": {id: "c", effective: []string{"x", "y"}},
	}
	counts := map[string]int32{"x": 7, "y": 2}
	r := assignRange(members, counts)
	// x: 7 over a,b,c -> 3,2,2 contiguous; y: 2 over a,c -> 1,1.
	if len(r["a"]) != 4 || len(r["b"]) != 2 || len(r["c"]) != 3 || !r["a"][TopicPartition{"x", 0}] || !r["c"][TopicPartition{"y", 1}] {
		t.Fatalf("range: %v", r)
	}
	u := assignUniform(members, counts, nil)
	total := 0
	for id, set := range u {
		total += len(set)
		if len(set) < 3 || len(set) > 3 {
			t.Errorf("uniform gives %s %d partitions, want 3", id, len(set))
		}
		for tp := range set {
			if !contains(members[id].effective, tp.Topic) {
				t.Errorf("%s got %v it does not subscribe to", id, tp)
			}
		}
	}
	if total != 9 {
		t.Fatalf("uniform assigned %d of 9", total)
	}
	// Sticky: removing c keeps a's and b's partitions where they were.
	delete(members, "c")
	u2 := assignUniform(members, counts, u)
	for id := range members {
		for tp := range u[id] {
			if !u2[id][tp] {
				t.Errorf("%v moved away from %s", tp, id)
			}
		}
	}
}

// TestConsumerStaticMemberRestart: a static member leaving with epoch -2 keeps its place; its
// successor (same instance id) gets the same partitions without a rebalance; a second live
// claim to the instance is refused.
func TestConsumerStaticMemberRestart(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	a := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", InstanceID: "i-a", SubscribedTopics: []string{"t"}, OwnedSet: true})
	b := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", InstanceID: "i-b", SubscribedTopics: []string{"t"}, OwnedSet: true})
	// Converge: a revokes, acknowledges; b takes the rest.
	a2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a.Assignment, OwnedSet: true})
	a3 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a2.MemberEpoch, Owned: a2.Assignment, OwnedSet: true})
	b2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: b.MemberEpoch, Owned: []TopicPartition{}, OwnedSet: true})
	if len(a2.Assignment)+len(b2.Assignment) != 3 {
		t.Fatalf("not converged: a %v b %v", parts(a2.Assignment), parts(b2.Assignment))
	}
	if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "b-impostor", InstanceID: "i-b", SubscribedTopics: []string{"t"}}); !errors.Is(r.Err, ErrUnreleasedInstanceID) {
		t.Fatalf("second live claim of i-b: %v", r.Err)
	}
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: -2})
	b3 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b-restarted", InstanceID: "i-b", SubscribedTopics: []string{"t"}, OwnedSet: true})
	if parts(b3.Assignment) != parts(b2.Assignment) || b3.MemberEpoch != b2.MemberEpoch {
		t.Fatalf("restarted static member: %+v, had %v at epoch %d", b3, parts(b2.Assignment), b2.MemberEpoch)
	}
	// a saw no rebalance: same epoch, same partitions.
	a4 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a3.MemberEpoch, Owned: a2.Assignment, OwnedSet: true})
	if a4.MemberEpoch != a3.MemberEpoch || a4.AssignmentSet {
		t.Fatalf("a after b's restart: %+v", a4)
	}
}

// TestConsumerRegexSubscription: a KIP-848 member subscribed by regular expression gets the
// matching topics, including ones created later.
func TestConsumerRegexSubscription(t *testing.T) {
	t.Parallel()
	topics := &fakeTopics{ends: map[string][]int64{"orders-eu": {0, 0}, "orders-us": {0}, "audit": {0}}}
	c := openTest(t, t.TempDir(), func(cfg *Config) { cfg.Topics = topics })
	re := "orders-.*"
	a := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", SubscribedRegex: &re, OwnedSet: true})
	if parts(a.Assignment) != "[orders-eu-0 orders-eu-1 orders-us-0]" {
		t.Fatalf("regex assignment: %v", parts(a.Assignment))
	}
	topics.mu.Lock()
	topics.ends["orders-jp"] = []int64{0}
	topics.mu.Unlock()
	a2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a.Assignment, OwnedSet: true})
	if len(a2.Assignment) != 4 || a2.MemberEpoch <= a.MemberEpoch {
		t.Fatalf("after a matching topic appeared: %+v", a2)
	}
	bad := "orders-("
	if r := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g2", MemberID: "b", SubscribedRegex: &bad}); !errors.Is(r.Err, ErrInvalidRegex) {
		t.Fatalf("bad regex: %v", r.Err)
	}
}
