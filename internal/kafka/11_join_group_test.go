package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

// startGroupServer is startServer with a group coordinator over its own offsets dir.
func startGroupServer(t *testing.T) (*testServer, *group.Coordinator) {
	t.Helper()
	var coord *group.Coordinator
	ts := startServer(t, func(cfg *Config) {
		parts, err := group.StreamOffsetsPartitions(cfg.Streams, 5)
		if err != nil {
			t.Fatal(err)
		}
		c, err := group.Open(group.Config{
			OffsetsPartitions:     parts,
			Topics:                group.StreamTopics(cfg.Streams),
			MinSessionTimeout:     100 * time.Millisecond,
			InitialRebalanceDelay: 200 * time.Millisecond,
			// KIP-848 members: the broker sets these.
			ConsumerSessionTimeout:    2 * time.Second,
			ConsumerHeartbeatInterval: 200 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cfg.Groups, coord = c, c
	})
	return ts, coord
}

// waitFor polls cond until it holds (or fails the test after a generous deadline).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consumer is a group member that records what it read.
type consumer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	got  map[string][]int // key -> sequence numbers in the order read
	own  map[int32]bool   // partitions currently assigned
	n    int
	stop context.CancelFunc
	done chan struct{}
}

func startConsumer(t *testing.T, ts *testServer, groupID, topic string, opts ...kgo.Opt) *consumer {
	t.Helper()
	c := &consumer{got: map[string][]int{}, own: map[int32]bool{}, done: make(chan struct{})}
	update := func(add bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, p := range m[topic] {
				if add {
					c.own[p] = true
				} else {
					delete(c.own, p)
				}
			}
		}
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.OnPartitionsAssigned(update(true)), kgo.OnPartitionsRevoked(update(false)), kgo.OnPartitionsLost(update(false)),
		kgo.SeedBrokers(ts.addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(2 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitInterval(200 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cl, c.stop = cl, cancel
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				seq, _ := strconv.Atoi(string(r.Value))
				c.mu.Lock()
				c.got[string(r.Key)] = append(c.got[string(r.Key)], seq)
				c.n++
				c.mu.Unlock()
			})
		}
	}()
	return c
}

func (c *consumer) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func (c *consumer) assigned() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.own) }

// TestGroupsSeedScenario is the seed's story: 6 partitions shared by a group of 3, a second
// group reading everything independently, a member killed without leaving whose partitions
// move to the survivors, per-key order, lag, and a new group replaying from the start.
func TestGroupsSeedScenario(t *testing.T) { seedScenario(t) }

// TestGroupsSeedScenarioKIP848 is the same story with KIP-848 groups (ConsumerGroupHeartbeat,
// the broker assigning partitions with its "range" and "uniform" assignors).
func TestGroupsSeedScenarioKIP848(t *testing.T) {
	t.Run("range", func(t *testing.T) { seedScenario(t, kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())) })
	t.Run("uniform", func(t *testing.T) {
		seedScenario(t, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	})
}

func seedScenario(t *testing.T, groupOpts ...kgo.Opt) {
	ts, coord := startGroupServer(t)
	ctx := context.Background()
	adm := kadm.NewClient(ts.client(t))
	const topic = "package-events"
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := ts.client(t, kgo.DefaultProduceTopic(topic))
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("pkg-%d", i%20)), Value: []byte(strconv.Itoa(i))})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 300)

	var a []*consumer
	ks := &killSwitch{}
	a = append(a, startConsumer(t, ts, "group-a", topic, append(groupOpts, kgo.Dialer(ks.dial))...))
	for range 2 {
		a = append(a, startConsumer(t, ts, "group-a", topic, groupOpts...))
	}
	b := startConsumer(t, ts, "group-b", topic, groupOpts...)
	defer b.stop()
	waitFor(t, "3 members holding 2 partitions each", func() bool {
		for _, c := range a {
			if c.assigned() != 2 {
				return false
			}
		}
		return true
	})
	wantType := group.TypeClassic
	if len(groupOpts) > 0 {
		wantType = group.TypeConsumer
	}
	if d, err := coord.Describe(ctx, "group-a"); err != nil || d.Type != wantType || len(d.Members) != 3 {
		t.Fatalf("group-a: type %q, %d members, want %q with 3 (%v)", d.Type, len(d.Members), wantType, err)
	}
	total := func(cs []*consumer) int {
		n := 0
		for _, c := range cs {
			n += c.count()
		}
		return n
	}
	waitFor(t, "both groups to read 300 records", func() bool { return total(a) >= 300 && b.count() >= 300 })

	// Kill one member without leaving: its connections are cut and it cannot reconnect, so
	// its session expires.
	victim := a[0]
	ks.kill()
	victim.stop()
	<-victim.done
	defer victim.cl.Close()
	survivors := a[1:]
	produce(300, 600)
	waitFor(t, "survivors to hold all 6 partitions", func() bool {
		return survivors[0].assigned()+survivors[1].assigned() == 6
	})
	waitFor(t, "group b to read 600", func() bool { return b.count() >= 600 })

	// Nothing lost: every sequence number reached group a (some possibly twice, at least once).
	waitFor(t, "group a to read all 600", func() bool {
		seen := map[int]bool{}
		for _, c := range a {
			c.mu.Lock()
			for _, seqs := range c.got {
				for _, s := range seqs {
					seen[s] = true
				}
			}
			c.mu.Unlock()
		}
		return len(seen) == 600
	})
	// Per-key order within each consumer (group b has a single member throughout).
	b.mu.Lock()
	for key, seqs := range b.got {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Errorf("key %s out of order: %v", key, seqs)
				break
			}
		}
	}
	b.mu.Unlock()

	// Lag: after commits settle, lag = log end - committed, per partition.
	for _, c := range survivors {
		if err := c.cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "group a fully committed", func() bool {
		lags, err := coord.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, gl := range lags {
			if gl.Group != "group-a" {
				continue
			}
			ok := len(gl.Partitions) == 6
			for _, p := range gl.Partitions {
				end, _ := ends.Lookup(topic, p.Partition)
				if p.LogEnd != end.Offset || p.Lag != p.LogEnd-p.Committed || p.Lag != 0 {
					ok = false
				}
			}
			return ok
		}
		return false
	})
	lags, err := adm.Lag(ctx, "group-a")
	if err != nil {
		t.Fatal(err)
	}
	gl := lags["group-a"]
	if gl.State != "Stable" || gl.Lag.Total() != 0 {
		t.Errorf("kadm lag for group-a: state %s total %d", gl.State, gl.Lag.Total())
	}
	for _, c := range survivors {
		c.stop()
		<-c.done
		c.cl.Close()
	}

	// A brand-new group replays from the earliest offset.
	fresh := startConsumer(t, ts, "group-new", topic, groupOpts...)
	defer func() { fresh.stop(); <-fresh.done; fresh.cl.Close() }()
	waitFor(t, "new group to replay all 600", func() bool { return fresh.count() >= 600 })
}

// TestGroupsRawErrors checks the protocol's answers to bad input.
func TestGroupsRawErrors(t *testing.T) {
	ts, _ := startGroupServer(t)
	ctx := context.Background()
	cl := ts.client(t)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	// Heartbeat for an unknown group / member.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "nope", "m", 1
	hr, err := hb.RequestWith(ctx, cl)
	if err != nil || hr.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat unknown group: %v %v", hr, err)
	}
	// Join v4+: MEMBER_ID_REQUIRED, then a real join.
	join := func(member string) *kmsg.JoinGroupResponse {
		jr := kmsg.NewPtrJoinGroupRequest()
		jr.Group, jr.MemberID, jr.ProtocolType = "g1", member, "consumer"
		jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis = 5000, 5000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0}
		jr.Protocols = append(jr.Protocols, p)
		resp, err := jr.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	r1 := join("")
	if r1.ErrorCode != kerr.MemberIDRequired.Code || r1.MemberID == "" {
		t.Fatalf("first join: %+v", r1)
	}
	r2 := join(r1.MemberID)
	if r2.ErrorCode != 0 || r2.LeaderID != r1.MemberID || r2.Generation != 1 || len(r2.Members) != 1 {
		t.Fatalf("second join: %+v", r2)
	}
	// Wrong generation on sync and heartbeat.
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Group, sr.MemberID, sr.Generation = "g1", r1.MemberID, 7
	sresp, err := sr.RequestWith(ctx, cl)
	if err != nil || sresp.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("sync with a wrong generation: %+v %v", sresp, err)
	}
	sr.Generation = 1
	a := kmsg.NewSyncGroupRequestGroupAssignment()
	a.MemberID, a.MemberAssignment = r1.MemberID, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	sr.GroupAssignment = append(sr.GroupAssignment, a)
	sresp, err = sr.RequestWith(ctx, cl)
	if err != nil || sresp.ErrorCode != 0 || len(sresp.MemberAssignment) != 10 {
		t.Fatalf("sync: %+v %v", sresp, err)
	}
	hb.Group, hb.MemberID, hb.Generation = "g1", r1.MemberID, 3
	if hr, err = hb.RequestWith(ctx, cl); err != nil || hr.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("heartbeat with a wrong generation: %+v %v", hr, err)
	}
	// Commits: unknown topic per partition; wrong generation; simple commit refused on a
	// non-empty group.
	commit := func(gen int32, member, topic string) *kmsg.OffsetCommitResponse {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group, oc.Generation, oc.MemberID = "g1", gen, member
		tt := kmsg.NewOffsetCommitRequestTopic()
		tt.Topic = topic
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset = 1, 5
		tt.Partitions = append(tt.Partitions, p)
		oc.Topics = append(oc.Topics, tt)
		resp, err := oc.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if c := commit(1, r1.MemberID, "missing").Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("commit to a missing topic: code %d", c)
	}
	if c := commit(2, r1.MemberID, "t").Topics[0].Partitions[0].ErrorCode; c != kerr.IllegalGeneration.Code {
		t.Errorf("commit with a wrong generation: code %d", c)
	}
	if c := commit(-1, "", "t").Topics[0].Partitions[0].ErrorCode; c != kerr.UnknownMemberID.Code {
		t.Errorf("simple commit on an active group: code %d", c)
	}
	if c := commit(1, r1.MemberID, "t").Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Errorf("commit: code %d", c)
	}
	// Delete refused while the member is there; OffsetDelete refused? (not subscribed: the
	// metadata above is not ConsumerProtocol, protocol type "consumer" parse fails -> allowed).
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteGroup(ctx, "g1"); !errorsIs(err, kerr.NonEmptyGroup) {
		t.Errorf("delete of a non-empty group: %v", err)
	}
	// Leave, then the group is empty and deletable; its offsets go with it.
	lr := kmsg.NewPtrLeaveGroupRequest()
	lr.Group = "g1"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = r1.MemberID
	lr.Members = append(lr.Members, lm)
	lresp, err := lr.RequestWith(ctx, cl)
	if err != nil || lresp.ErrorCode != 0 || lresp.Members[0].ErrorCode != 0 {
		t.Fatalf("leave: %+v %v", lresp, err)
	}
	dg, err := adm.DescribeGroups(ctx, "g1")
	if err != nil || dg["g1"].State != "Empty" {
		t.Fatalf("describe after leave: %+v %v", dg, err)
	}
	if _, err := adm.DeleteGroup(ctx, "g1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := adm.DeleteGroup(ctx, "g1"); !errorsIs(err, kerr.GroupIDNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	of, err := adm.FetchOffsets(ctx, "g1")
	if err != nil || len(of) != 0 {
		t.Fatalf("offsets after delete: %v %v", of, err)
	}
	// ListGroups v5 filters by state and type; OffsetFetch v8 asks for several groups.
	if r, err := adm.CommitOffsets(ctx, "simple", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 1, Offset: 41})); err != nil || r.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, r.Error())
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.StatesFilter = []string{"empty"}
	lgr, err := lg.RequestWith(ctx, cl)
	if err != nil || len(lgr.Groups) != 1 || lgr.Groups[0].Group != "simple" || lgr.Groups[0].GroupState != "Empty" || lgr.Groups[0].GroupType != "classic" {
		t.Fatalf("list groups in state Empty: %+v %v", lgr, err)
	}
	lg.StatesFilter, lg.TypesFilter = nil, []string{"consumer"}
	if lgr, err = lg.RequestWith(ctx, cl); err != nil || len(lgr.Groups) != 0 {
		t.Fatalf("list groups of type consumer: %+v %v", lgr, err)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	for _, g := range []string{"simple", "none"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		of8.Groups = append(of8.Groups, rg)
	}
	ofr, err := of8.RequestWith(ctx, cl)
	if err != nil || len(ofr.Groups) != 2 || len(ofr.Groups[0].Topics) != 1 || ofr.Groups[0].Topics[0].Partitions[0].Offset != 42 || len(ofr.Groups[1].Topics) != 0 {
		t.Fatalf("offset fetch v8: %+v %v", ofr, err)
	}
	// FindCoordinator batched (v4+) answers this broker for every key.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"a", "b"}
	fr, err := fc.RequestWith(ctx, cl)
	if err != nil || len(fr.Coordinators) != 2 || fr.Coordinators[1].Host != "127.0.0.1" || fr.Coordinators[1].ErrorCode != 0 {
		t.Fatalf("find coordinator: %+v %v", fr, err)
	}
}

// errorsIs compares Kafka error codes (kadm copies errors to attach the broker's message).
func errorsIs(err error, target *kerr.Error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && ke.Code == target.Code
}

// killSwitch is a dialer whose connections can all be cut at once, after which it refuses to
// dial: a client "killed" without a chance to leave its group.
type killSwitch struct {
	mu     sync.Mutex
	conns  []net.Conn
	killed bool
}

func (k *killSwitch) dial(ctx context.Context, network, host string) (net.Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.killed {
		return nil, errors.New("killed")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err == nil {
		k.conns = append(k.conns, c)
	}
	return c, err
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killed = true
	for _, c := range k.conns {
		c.Close()
	}
}
