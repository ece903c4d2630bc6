package group

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeTopics is a Topics with fixed partition counts and end offsets.
type fakeTopics struct {
	mu   sync.Mutex
	ends map[string][]int64
}

func (f *fakeTopics) Partitions(topic string) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.ends[topic]
	return int32(len(e)), ok
}

func (f *fakeTopics) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for t := range f.ends {
		out = append(out, t)
	}
	return out
}

func (f *fakeTopics) EndOffset(topic string, p int32) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.ends[topic]
	if !ok || p < 0 || int(p) >= len(e) {
		return 0, false
	}
	return e[p], true
}

// TopicID makes a topic's id of its name (TopicIDs).
func (f *fakeTopics) TopicID(name string) ([16]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var id [16]byte
	if _, ok := f.ends[name]; !ok || len(name) > 15 {
		return id, false
	}
	id[0] = 1
	copy(id[1:], name)
	return id, true
}

func (f *fakeTopics) TopicName(id [16]byte) (string, bool) {
	name := string(bytes.TrimRight(id[1:], "\x00"))
	if got, ok := f.TopicID(name); !ok || got != id {
		return "", false
	}
	return name, true
}

func openTest(t *testing.T, dir string, mod func(*Config)) *Coordinator {
	t.Helper()
	cfg := Config{
		OffsetsPartitions:     openOffsetsTopic(t, dir, nil, 5),
		Topics:                &fakeTopics{ends: map[string][]int64{"t": {10, 20, 30}}},
		MinSessionTimeout:     time.Millisecond,
		InitialRebalanceDelay: -1,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var ctx = context.Background()

func joinReq(member, instance string, session time.Duration, protos ...string) JoinRequest {
	r := JoinRequest{Group: "g", MemberID: member, InstanceID: instance, ClientID: "c", ClientHost: "/127.0.0.1",
		ProtocolType: "consumer", SessionTimeout: session, RebalanceTimeout: session}
	for _, p := range protos {
		r.Protocols = append(r.Protocols, Protocol{Name: p, Metadata: []byte(p)})
	}
	return r
}

func mustJoin(t *testing.T, c *Coordinator, r JoinRequest) JoinResult {
	t.Helper()
	res := c.Join(ctx, r)(ctx)
	if res.Err != nil {
		t.Fatalf("join %+v: %v", r, res.Err)
	}
	return res
}

func mustSync(t *testing.T, c *Coordinator, member string, gen int32, assign map[string][]byte) []byte {
	t.Helper()
	res := c.Sync(ctx, SyncRequest{Group: "g", MemberID: member, Generation: gen, Assignments: assign})(ctx)
	if res.Err != nil {
		t.Fatalf("sync %s gen %d: %v", member, gen, res.Err)
	}
	return res.Assignment
}

func TestJoinSyncTwoMembersAndProtocolVote(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	const session = time.Minute
	a := mustJoin(t, c, joinReq("", "", session, "range", "roundrobin"))
	if a.Generation != 1 || a.Leader != a.MemberID || a.Protocol != "range" {
		t.Fatalf("first join: %+v", a)
	}
	mustSync(t, c, a.MemberID, 1, map[string][]byte{a.MemberID: []byte("A")})
	// b prefers roundrobin; a still votes range, b roundrobin: a tie goes to the first
	// candidate in the first member's order. A third member preferring roundrobin tips it.
	// New members first: the leader's rejoin then completes the round with all three.
	waitB := c.Join(ctx, joinReq("", "", session, "roundrobin", "range"))
	waitC := c.Join(ctx, joinReq("", "", session, "roundrobin", "sticky", "range"))
	waitA := c.Join(ctx, joinReq(a.MemberID, "", session, "range", "roundrobin"))
	ra, rb, rc := waitA(ctx), waitB(ctx), waitC(ctx)
	for _, r := range []JoinResult{ra, rb, rc} {
		if r.Err != nil || r.Generation != 2 || r.Protocol != "roundrobin" || r.Leader != a.MemberID {
			t.Fatalf("rejoin: %+v", r)
		}
	}
	if len(ra.Members) != 3 || len(rb.Members) != 0 {
		t.Fatalf("only the leader gets the members: %d %d", len(ra.Members), len(rb.Members))
	}
	if string(ra.Members[0].Metadata) != "roundrobin" {
		t.Fatalf("leader sees the selected protocol's metadata, got %q", ra.Members[0].Metadata)
	}
	// Followers' syncs wait for the leader's.
	wb := c.Sync(ctx, SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: 2})
	mustSync(t, c, a.MemberID, 2, map[string][]byte{a.MemberID: []byte("A"), rb.MemberID: []byte("B")})
	if got := wb(ctx); got.Err != nil || string(got.Assignment) != "B" {
		t.Fatalf("follower sync: %+v", got)
	}
	if got := mustSync(t, c, rc.MemberID, 2, nil); got != nil {
		t.Fatalf("member without an assignment got %q", got)
	}
	d, err := c.Describe(ctx, "g")
	if err != nil || d.State != StateStable || len(d.Members) != 3 || d.Protocol != "roundrobin" {
		t.Fatalf("describe: %+v %v", d, err)
	}
	// Unsupported protocol set.
	if r := c.Join(ctx, joinReq("", "", session, "other"))(ctx); !errors.Is(r.Err, ErrInconsistentProtocol) {
		t.Fatalf("join with no common protocol: %v", r.Err)
	}
}

func TestMemberIDRequiredAndErrors(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	r := joinReq("", "", time.Minute, "range")
	r.RequireKnownMemberID = true
	first := c.Join(ctx, r)(ctx)
	if !errors.Is(first.Err, ErrMemberIDRequired) || first.MemberID == "" {
		t.Fatalf("first join: %+v", first)
	}
	r.MemberID = first.MemberID
	second := mustJoin(t, c, r)
	if second.MemberID != first.MemberID || second.Generation != 1 {
		t.Fatalf("second join: %+v", second)
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: second.MemberID, Generation: 1,
		Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {Offset: 1}}}); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("commit before sync: %v", err)
	}
	mustSync(t, c, second.MemberID, 1, nil)
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: "ghost", Generation: 1}); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("unknown member heartbeat: %v", err)
	}
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: second.MemberID, Generation: 9}); !errors.Is(err, ErrIllegalGeneration) {
		t.Fatalf("wrong generation heartbeat: %v", err)
	}
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "nope", MemberID: "x"}); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("unknown group heartbeat: %v", err)
	}
	bad := joinReq("", "", time.Hour*24*365, "range")
	if res := c.Join(ctx, bad)(ctx); !errors.Is(res.Err, ErrInvalidSessionTimeout) {
		t.Fatalf("absurd session timeout: %v", res.Err)
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: second.MemberID, Generation: 1,
		Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {Offset: 1}, {"t", 7}: {Offset: 1}, {"x", 0}: {Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	per, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: second.MemberID, Generation: 1,
		Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {Offset: 1}, {"t", 7}: {Offset: 1}}})
	if err != nil || per[TopicPartition{"t", 0}] != nil || !errors.Is(per[TopicPartition{"t", 7}], ErrUnknownTopicOrPartition) {
		t.Fatalf("commit: %v %v", per, err)
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", Generation: -1, Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {}}}); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("simple commit to an active group: %v", err)
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "other", MemberID: "m", Generation: 3}); !errors.Is(err, ErrGroupIDNotFound) {
		t.Fatalf("generation commit to a missing group: %v", err)
	}
	if err := c.DeleteGroup(ctx, "g"); !errors.Is(err, ErrNonEmptyGroup) {
		t.Fatalf("delete of a non-empty group: %v", err)
	}
}

// TestSessionExpiryRebalances: a member that stops heartbeating is removed; the survivor is
// told to rejoin and the next generation has only it.
func TestSessionExpiryRebalances(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	long, short := time.Minute, 50*time.Millisecond
	a := mustJoin(t, c, joinReq("", "", long, "range"))
	mustSync(t, c, a.MemberID, 1, nil)
	wb := c.Join(ctx, joinReq("", "", short, "range"))
	ra := mustJoin(t, c, joinReq(a.MemberID, "", long, "range"))
	b := wb(ctx)
	if ra.Generation != 2 || b.Generation != 2 {
		t.Fatalf("generations %d %d", ra.Generation, b.Generation)
	}
	mustSync(t, c, a.MemberID, 2, nil)
	mustSync(t, c, b.MemberID, 2, nil)
	// b goes silent; a heartbeats until told to rebalance.
	for {
		err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: 2})
		if errors.Is(err, ErrRebalanceInProgress) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := mustJoin(t, c, joinReq(a.MemberID, "", long, "range"))
	if r.Generation != 3 || len(r.Members) != 1 {
		t.Fatalf("after expiry: %+v", r)
	}
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: b.MemberID, Generation: 2}); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("expired member heartbeat: %v", err)
	}
}

// TestRebalanceTimeoutRemovesLaggards: a member that does not rejoin within the rebalance
// timeout is dropped from the next generation.
func TestRebalanceTimeoutRemovesLaggards(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	r := joinReq("", "", time.Minute, "range")
	r.RebalanceTimeout = 100 * time.Millisecond
	a := mustJoin(t, c, r)
	mustSync(t, c, a.MemberID, 1, nil)
	// b joins: a must rejoin but never does (it keeps heartbeating, which keeps its session).
	rb := joinReq("", "", time.Minute, "range")
	rb.RebalanceTimeout = 100 * time.Millisecond // the group's is the largest of its members'
	b := mustJoin(t, c, rb)
	if b.Generation != 2 || b.Leader != b.MemberID || len(b.Members) != 1 {
		t.Fatalf("b: %+v", b)
	}
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: 1}); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("laggard: %v", err)
	}
}

// TestStaticMembership: a restarted static member takes its old place without a rebalance;
// the old member id is fenced.
func TestStaticMembership(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	const session = time.Minute
	a := mustJoin(t, c, joinReq("", "inst-a", session, "range"))
	mustSync(t, c, a.MemberID, 1, map[string][]byte{a.MemberID: []byte("A")})
	a2 := mustJoin(t, c, joinReq("", "inst-a", session, "range"))
	if a2.Generation != 1 || a2.MemberID == a.MemberID || a2.Leader != a2.MemberID || !a2.SkipAssignment {
		t.Fatalf("static rejoin: %+v", a2)
	}
	if got := mustSync(t, c, a2.MemberID, 1, nil); string(got) != "A" {
		t.Fatalf("static member kept assignment %q", got)
	}
	err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, InstanceID: "inst-a", Generation: 1})
	if !errors.Is(err, ErrFencedInstanceID) {
		t.Fatalf("old static member: %v", err)
	}
	// Leaving by instance id (admin removal).
	errs, err := c.Leave(ctx, "g", []LeaveMember{{InstanceID: "inst-a"}, {MemberID: "ghost"}})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], ErrUnknownMemberID) {
		t.Fatalf("leave: %v %v", errs, err)
	}
	d, _ := c.Describe(ctx, "g")
	if d.State != StateEmpty {
		t.Fatalf("state after leave: %v", d.State)
	}
}

// TestStormDoesNotStallOtherGroups: while one group's goroutine is stuck and its queue full,
// another group is served.
func TestStormDoesNotStallOtherGroups(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), func(cfg *Config) { cfg.GroupQueueLen = 4 })
	mustJoin(t, c, joinReq("", "", time.Minute, "range"))
	stormy, _ := c.lookup("g", false)
	block := make(chan struct{})
	if err := stormy.submit(ctx, func() { <-block }); err != nil {
		t.Fatal(err)
	}
	// Flood the stuck group until its bounded queue pushes back.
	var flooders sync.WaitGroup
	for range 20 {
		flooders.Add(1)
		go func() {
			defer flooders.Done()
			c.Join(ctx, joinReq("", "", time.Minute, "range"))
		}()
	}
	for len(stormy.ops) < cap(stormy.ops) {
		time.Sleep(time.Millisecond)
	}
	r := JoinRequest{Group: "calm", ClientID: "c", ProtocolType: "consumer", SessionTimeout: time.Minute, RebalanceTimeout: time.Minute,
		Protocols: []Protocol{{Name: "range"}}}
	if res := c.Join(ctx, r)(ctx); res.Err != nil || res.Generation != 1 {
		t.Fatalf("calm group: %+v", res)
	}
	close(block)
	flooders.Wait()
}

// TestCooperativeRebalancesInARow: members that rejoin with changed metadata (as
// cooperative-sticky clients do after revoking) get several generations in a row.
func TestCooperativeRebalancesInARow(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	const s = time.Minute
	proto := func(owned string) []Protocol {
		return []Protocol{{Name: "cooperative-sticky", Metadata: []byte(owned)}}
	}
	ra := JoinRequest{Group: "g", ClientID: "a", ProtocolType: "consumer", SessionTimeout: s, RebalanceTimeout: s, Protocols: proto("")}
	a := mustJoin(t, c, ra)
	mustSync(t, c, a.MemberID, 1, nil)
	rb := ra
	rb.ClientID = "b"
	wb0 := c.Join(ctx, rb)
	mustJoin(t, c, func() JoinRequest { r := ra; r.MemberID = a.MemberID; return r }())
	b := wb0(ctx)
	gen := b.Generation
	for round := range 3 {
		wb := c.Sync(ctx, SyncRequest{Group: "g", MemberID: b.MemberID, Generation: gen})
		mustSync(t, c, a.MemberID, gen, map[string][]byte{b.MemberID: []byte{byte(round)}})
		if got := wb(ctx); got.Err != nil || len(got.Assignment) != 1 || got.Assignment[0] != byte(round) {
			t.Fatalf("round %d: %+v", round, got)
		}
		// b "revoked" something and rejoins with new owned partitions: a rebalance.
		rb.MemberID, rb.Protocols = b.MemberID, proto(string(rune('a'+round)))
		wb2 := c.Join(ctx, rb)
		if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: gen}); !errors.Is(err, ErrRebalanceInProgress) {
			t.Fatalf("round %d: leader heartbeat: %v", round, err)
		}
		ra.MemberID = a.MemberID
		r := mustJoin(t, c, ra)
		if nb := wb2(ctx); nb.Err != nil || nb.Generation != gen+1 || r.Generation != gen+1 {
			t.Fatalf("round %d: %+v %+v", round, nb, r)
		}
		gen++
	}
}

// TestGroupRestoredAfterRestart: a classic group's last generation (its GroupMetadata record)
// is restored when the coordinator reopens, as Kafka loads it: the member heartbeats and
// commits at its generation without rejoining (before, it had to rejoin, and a Kafka Streams
// application with exactly_once_v2 closed its tasks and restored its state from scratch); a
// member that does not come back expires. A member's commit to a group known only by its
// committed offsets is UNKNOWN_MEMBER_ID, so that it rejoins (GROUP_ID_NOT_FOUND, for a
// group with nothing recorded, is fatal to the Java consumer).
func TestGroupRestoredAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := openTest(t, dir, nil)
	stay := mustJoin(t, c, joinReq("", "", time.Minute, "range"))
	gone := c.Join(ctx, joinReq("", "", 200*time.Millisecond, "range"))
	stay = mustJoin(t, c, joinReq(stay.MemberID, "", time.Minute, "range"))
	goneRes := gone(ctx)
	if goneRes.Err != nil || stay.Generation != 2 {
		t.Fatalf("joins: %+v %+v", stay, goneRes)
	}
	mustSync(t, c, stay.MemberID, 2, map[string][]byte{stay.MemberID: []byte("p0"), goneRes.MemberID: []byte("p1")})
	mustSync(t, c, goneRes.MemberID, 2, nil)
	commit := func(c *Coordinator, group, member string, gen int32) error {
		_, err := c.Commit(ctx, CommitRequest{Group: group, MemberID: member, Generation: gen,
			Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {Offset: 5}}})
		return err
	}
	if err := commit(c, "g", stay.MemberID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "simple", Generation: -1,
		Offsets: map[TopicPartition]OffsetValue{{"t", 1}: {Offset: 7}}}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openTest(t, dir, nil)
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: stay.MemberID, Generation: 2}); err != nil {
		t.Fatalf("heartbeat of a member of the last generation after a restart: %v", err)
	}
	if err := commit(c, "g", stay.MemberID, 2); err != nil {
		t.Fatalf("commit of a member of the last generation after a restart: %v", err)
	}
	if got := mustSync(t, c, stay.MemberID, 2, nil); string(got) != "p0" {
		t.Fatalf("assignment after a restart: %q", got)
	}
	// The member that does not come back expires; the other is told to rejoin.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: stay.MemberID, Generation: 2})
		if errors.Is(err, ErrRebalanceInProgress) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("heartbeat while the other member expires: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := mustJoin(t, c, joinReq(stay.MemberID, "", time.Minute, "range")); res.Generation != 3 || len(res.Members) != 1 {
		t.Fatalf("rejoin after the other member expired: %+v", res)
	}
	if err := commit(c, "simple", "m", 3); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("member's commit to a group known by its offsets only: %v, want %v", err, ErrUnknownMemberID)
	}
	if err := commit(c, "nothing", "m", 3); !errors.Is(err, ErrGroupIDNotFound) {
		t.Fatalf("member's commit to an unknown group: %v, want %v", err, ErrGroupIDNotFound)
	}
}
