package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/test/harness"
)

// groupCoordinatorOf asks y which node coordinates group (-1: none known yet).
func groupCoordinatorOf(t *testing.T, y *harness.Yard, group string) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorKeys = group, []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1
	}
	if len(resp.Coordinators) == 1 {
		if c := resp.Coordinators[0]; c.ErrorCode == 0 {
			return c.NodeID
		}
		return -1
	}
	if resp.ErrorCode != 0 {
		return -1
	}
	return resp.NodeID
}

// offsetFetchOn sends OffsetFetch for every committed offset of group to node y (id node)
// itself.
func offsetFetchOn(t *testing.T, y *harness.Yard, node int32, group string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group // Topics nil: every committed offset
	req.Groups = append(req.Groups, rg)
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil { // learns the node ids
		return nil, err
	}
	resp, err := cl.Broker(int(node)).RetriableRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.OffsetFetchResponse)
	if len(r.Groups) != 1 {
		return nil, fmt.Errorf("OffsetFetch v%d answered %d groups", req.Version, len(r.Groups))
	}
	if err := kerr.ErrorForCode(r.Groups[0].ErrorCode); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, tp := range r.Groups[0].Topics {
		for _, p := range tp.Partitions {
			if tp.Topic == "work" {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

// TestServeClusterGroupFailover runs a consumer group on three processes, SIGKILLs the node that
// coordinates it (the leader of its partition of the replicated __consumer_offsets), and checks
// that the group moves to the partition's new leader: the consumers carry on, a consumer that
// joins afterwards starts from the committed offsets, no record is read twice or skipped, and
// OffsetFetch on the new coordinator returns the commits (NOT_COORDINATOR on another node).
func TestServeClusterGroupFailover(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3, "--kafka-group-initial-rebalance-delay", "0s")
	const topic, groupID, perPhase = "work", "failover-group", 300
	createTopic(t, ys[0], topic, 3)
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(phase string) {
		t.Helper()
		var recs []*kgo.Record
		for i := range perPhase {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", phase, i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	produce("before")

	seen := map[string]int{}
	newConsumer := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
			kgo.SessionTimeout(10*time.Second), kgo.RetryTimeout(60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	// poll reads one round from cl, commits what it read (synchronously, retried until the
	// commit is acknowledged) and only then lets a rebalance happen.
	poll := func(cl *kgo.Client) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		for deadline := time.Now().Add(60 * time.Second); ; {
			cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.CommitUncommittedOffsets(cctx)
			ccancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("commit: %v", err)
			}
		}
		cl.AllowRebalance()
	}
	readUntil := func(n int, cls ...*kgo.Client) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for len(seen) < n {
			if time.Now().After(deadline) {
				t.Fatalf("read %d of %d records", len(seen), n)
			}
			for _, cl := range cls {
				poll(cl)
			}
		}
	}
	a := newConsumer()
	readUntil(perPhase, a)

	var coord int32
	eventually(t, "the group's coordinator", func() error {
		if coord = groupCoordinatorOf(t, ys[0], groupID); coord < 1 {
			return errors.New("none yet")
		}
		for _, y := range ys[1:] {
			if c := groupCoordinatorOf(t, y, groupID); c != coord {
				return fmt.Errorf("nodes answer %d and %d", coord, c)
			}
		}
		return nil
	})
	other := ys[coord%3]
	if _, err := offsetFetchOn(t, other, coord%3+1, groupID); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("OffsetFetch on node %d, not the coordinator (%d): %v, want NOT_COORDINATOR", coord%3+1, coord, err)
	}
	ys[coord-1].Kill()
	start := time.Now()
	var moved int32
	eventually(t, "a new coordinator", func() error {
		if moved = groupCoordinatorOf(t, other, groupID); moved < 1 || moved == coord {
			return fmt.Errorf("coordinator %d", moved)
		}
		return nil
	})
	t.Logf("node %d (the coordinator) killed; node %d coordinates the group %v later", coord, moved, time.Since(start))

	produce("after")
	b := newConsumer() // joins at the new coordinator: the group rebalances, b starts from commits
	readUntil(2*perPhase, a, b)
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %q read %d times", v, n)
		}
	}
	if len(seen) != 2*perPhase {
		t.Fatalf("read %d distinct records, want %d", len(seen), 2*perPhase)
	}
	eventually(t, "the commits on the new coordinator", func() error {
		offs, err := offsetFetchOn(t, ys[moved-1], moved, groupID)
		if err != nil {
			return err
		}
		var sum int64
		for _, o := range offs {
			sum += o
		}
		if len(offs) != 3 || sum != 2*perPhase {
			return fmt.Errorf("committed %v, want 3 partitions summing to %d", offs, 2*perPhase)
		}
		return nil
	})
}
