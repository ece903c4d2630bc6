package group

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// failingPartition is an offsets partition whose writes fail while fail is set (a lost
// leadership: the Raft group refused the proposal).
type failingPartition struct {
	OffsetsPartition
	fail atomic.Bool
}

func (p *failingPartition) AppendInternal(batch []byte) (int64, error) {
	if p.fail.Load() {
		return -1, errors.New("not the leader")
	}
	return p.OffsetsPartition.AppendInternal(batch)
}

// openClusterTest opens a cluster node's coordinator over 5 local partitions (standing in for
// the replicated ones: their writes land at once, as a committed proposal).
func openClusterTest(t *testing.T) (*Coordinator, []*failingPartition) {
	t.Helper()
	var parts []*failingPartition
	for _, p := range openOffsetsTopic(t, t.TempDir(), nil, 5) {
		parts = append(parts, &failingPartition{OffsetsPartition: p})
	}
	c, err := Open(Config{
		ClusterPartitions:     5,
		Topics:                &fakeTopics{ends: map[string][]int64{"t": {10, 20, 30}}},
		MinSessionTimeout:     time.Millisecond,
		InitialRebalanceDelay: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, parts
}

func noBarrier(context.Context) (uint64, error) { return 1, nil }
func termOne() uint64                           { return 1 }

// waitCoordinates waits until Coordinates(group) returns want.
func waitCoordinates(t *testing.T, c *Coordinator, group string, want error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Coordinates(group)
		if errors.Is(err, want) || (want == nil && err == nil) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Coordinates(%q) = %v, want %v", group, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClusterCoordinatorPlacement: a cluster node serves a group only while it leads the
// group's offsets partition: NOT_COORDINATOR before, LOAD_IN_PROGRESS until the barrier
// returned and the partition is loaded, NOT_COORDINATOR after losing it (the group's
// goroutine stops); leading it again loads the commits and the classic group's generation
// from the log, so the member heartbeats on.
func TestClusterCoordinatorPlacement(t *testing.T) {
	t.Parallel()
	c, parts := openClusterTest(t)
	part := c.OffsetsPartitionFor("g")
	p := parts[part]
	if res := c.Join(ctx, joinReq("", "", time.Minute, "range"))(ctx); !errors.Is(res.Err, ErrNotCoordinator) {
		t.Fatalf("join before leading: %v, want ErrNotCoordinator", res.Err)
	}
	tp := TopicPartition{Topic: "t", Partition: 1}
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", Generation: -1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 5}}}); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("commit before leading: %v, want ErrNotCoordinator", err)
	}

	release := make(chan struct{})
	c.SetLeader(part, true, p, termOne, func(ctx context.Context) (uint64, error) {
		select {
		case <-release:
			return 1, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	if err := c.Coordinates("g"); !errors.Is(err, ErrCoordinatorLoadInProgress) {
		t.Fatalf("while loading: %v, want ErrCoordinatorLoadInProgress", err)
	}
	if _, err := c.Describe(ctx, "g"); !errors.Is(err, ErrCoordinatorLoadInProgress) {
		t.Fatalf("describe while loading: %v", err)
	}
	close(release)
	waitCoordinates(t, c, "g", nil)

	a := mustJoin(t, c, joinReq("", "", time.Minute, "range"))
	mustSync(t, c, a.MemberID, a.Generation, map[string][]byte{a.MemberID: []byte("x")})
	res, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation,
		Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 7, LeaderEpoch: -1}}})
	if err != nil || res[tp] != nil {
		t.Fatalf("commit: %v %v", err, res)
	}
	if n := len(c.List(ctx)); n != 1 {
		t.Fatalf("listed %d groups, want 1", n)
	}

	c.SetLeader(part, false, p, termOne, noBarrier)
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation}); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("heartbeat after losing the partition: %v, want ErrNotCoordinator", err)
	}
	if n := len(c.List(ctx)); n != 0 {
		t.Fatalf("listed %d groups after losing the partition, want 0", n)
	}

	c.SetLeader(part, true, p, termOne, noBarrier)
	waitCoordinates(t, c, "g", nil)
	if got := c.FetchOffsets("g", []TopicPartition{tp}); len(got) != 1 || got[0].Offset != 7 {
		t.Fatalf("offsets after loading again: %+v, want 7", got)
	}
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation}); err != nil {
		t.Fatalf("heartbeat after loading again: %v", err)
	}
	// Another partition's groups are still not this node's.
	for i := 0; ; i++ {
		other := "other-" + string(rune('a'+i))
		if c.OffsetsPartitionFor(other) != part {
			if err := c.Coordinates(other); !errors.Is(err, ErrNotCoordinator) {
				t.Fatalf("group of another partition: %v", err)
			}
			break
		}
	}
}

// TestClusterCoordinatorFailedWrite: a write the partition's group refuses answers
// NOT_COORDINATOR and unloads the partition (what the log holds is unknown); leading it
// again loads what was committed.
func TestClusterCoordinatorFailedWrite(t *testing.T) {
	t.Parallel()
	c, parts := openClusterTest(t)
	part := c.OffsetsPartitionFor("g")
	p := parts[part]
	c.SetLeader(part, true, p, termOne, noBarrier)
	waitCoordinates(t, c, "g", nil)
	tp := TopicPartition{Topic: "t", Partition: 0}
	commit := func(off int64) (map[TopicPartition]error, error) {
		return c.Commit(ctx, CommitRequest{Group: "g", Generation: -1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: off, LeaderEpoch: -1}}})
	}
	if res, err := commit(3); err != nil || res[tp] != nil {
		t.Fatalf("commit: %v %v", err, res)
	}
	p.fail.Store(true)
	if res, err := commit(4); err != nil || !errors.Is(res[tp], ErrNotCoordinator) {
		t.Fatalf("commit the group refused: %v %v, want ErrNotCoordinator", err, res)
	}
	waitCoordinates(t, c, "g", ErrNotCoordinator)
	p.fail.Store(false)
	c.SetLeader(part, true, p, termOne, noBarrier)
	waitCoordinates(t, c, "g", nil)
	if got := c.FetchOffsets("g", []TopicPartition{tp}); len(got) != 1 || got[0].Offset != 3 {
		t.Fatalf("offsets after loading again: %+v, want 3", got)
	}
}

// TestClusterCoordinatorTxnOffsets: on a cluster node the group's coordinator writes a
// transaction's offsets itself, pending (OffsetFetch does not return them; RequireStable sees
// them) until a marker the transaction coordinator writes to the partition (end to end:
// TestServeClusterGroupTransact); completing them through the group coordinator is refused.
func TestClusterCoordinatorTxnOffsets(t *testing.T) {
	t.Parallel()
	c, parts := openClusterTest(t)
	part := c.OffsetsPartitionFor("g")
	c.SetLeader(part, true, parts[part], termOne, noBarrier)
	waitCoordinates(t, c, "g", nil)
	if err := c.ValidateTxnCommit(ctx, CommitRequest{Group: "g", Generation: -1}); err != nil {
		t.Fatalf("validate: %v", err)
	}
	offs := map[TopicPartition]OffsetValue{{Topic: "t", Partition: 0}: {Offset: 1}}
	if err := c.WriteTxnOffsets(ctx, "g", 7, 0, offs); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := c.PendingTxnOffsets("g"); !got[TopicPartition{Topic: "t", Partition: 0}] || len(got) != 1 {
		t.Fatalf("pending: %v", got)
	}
	if got := c.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("fetched before the marker: %+v", got)
	}
	if err := c.CompleteTxnOffsets(ctx, "g", 7, 0, 0, true, offs); !errors.Is(err, ErrTxnNotReplicated) {
		t.Fatalf("complete: %v", err)
	}
	other := (part + 1) % 5
	for _, g := range []string{"a", "b", "c", "d", "e", "f", "h", "i", "j", "k"} {
		if c.OffsetsPartitionFor(g) == other {
			if err := c.ValidateTxnCommit(ctx, CommitRequest{Group: g, Generation: -1}); !errors.Is(err, ErrNotCoordinator) {
				t.Fatalf("validate on a node that does not coordinate %s: %v", g, err)
			}
			break
		}
	}
}
