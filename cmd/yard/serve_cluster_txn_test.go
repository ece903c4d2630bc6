package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/test/harness"
)

// txnCoordinatorOf asks y which node coordinates transactional ID id (-1: none known yet).
func txnCoordinatorOf(t *testing.T, y *harness.Yard, id string) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorType = 1
	req.CoordinatorKey, req.CoordinatorKeys = id, []string{id}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
		return -1
	}
	return resp.Coordinators[0].NodeID
}

// partitionLeaderOf is the leader of topic's partition p as y's Metadata reports it.
func partitionLeaderOf(t *testing.T, y *harness.Yard, topic string, p int32) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	td, err := adminOf(t, y).ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		return -1
	}
	return td[topic].Partitions[p].Leader
}

// TestServeClusterTransactions runs a franz-go transactional producer against three processes:
// transactions commit and abort, the transaction coordinator (the leader of the ID's
// partition of the replicated __transaction_state) is SIGKILLed in the middle of a
// transaction, which then commits at the new coordinator, and later the leader of a
// partition the transactions write to is SIGKILLed in the middle of one too. A read_committed
// consumer on another node then reads every record of every committed transaction exactly
// once and none of an aborted one; every transaction is all or nothing.
func TestServeClusterTransactions(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3, "--kafka-transaction-state-partitions", "5")
	const topic, txnID, txns, perTxn = "txn-work", "txn-cluster", 30, 12
	createTopic(t, ys[0], topic, 3)
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID(txnID), kgo.TransactionTimeout(60*time.Second),
		kgo.RecordRetries(1000), kgo.RetryTimeout(90*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	committed := map[int]bool{} // transaction -> its commit was acknowledged
	aborted := map[int]bool{}
	var killed []int
	kill := func(node int32) {
		t.Helper()
		if node < 1 {
			t.Fatalf("no node to kill: %d", node)
		}
		ys[node-1].Kill()
		killed = append(killed, int(node))
		t.Logf("node %d killed", node)
	}
	var coord int32
	for i := range txns {
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		if err := prod.BeginTransaction(); err != nil {
			t.Fatalf("begin %d: %v", i, err)
		}
		var recs []*kgo.Record
		for k := range perTxn {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("t%d-r%d", i, k))})
		}
		perr := prod.ProduceSync(ctx, recs...).FirstErr()
		switch i {
		case 10: // the coordinator dies with the transaction open
			eventually(t, "the transaction coordinator", func() error {
				if coord = txnCoordinatorOf(t, ys[0], txnID); coord < 1 {
					return errors.New("none")
				}
				return nil
			})
			kill(coord)
		case 20: // a partition's leader dies with the transaction open
			ys[killed[0]-1].Restart()
			var leader int32
			eventually(t, "partition 1's leader", func() error {
				if leader = partitionLeaderOf(t, ys[killed[0]-1], topic, 1); leader < 1 {
					return errors.New("none")
				}
				return nil
			})
			kill(leader)
		}
		commit := i%3 != 2 && perr == nil
		err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		cancel()
		switch {
		case err == nil && commit:
			committed[i] = true
		case err == nil:
			aborted[i] = true
		default:
			t.Logf("transaction %d (commit %v, produce error %v): end: %v", i, commit, perr, err)
			if !commit {
				aborted[i] = true // an abort that failed is still no commit
			}
			// A failed commit is in doubt: all or nothing, checked below.
			rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
			if err := prod.AbortBufferedRecords(rctx); err != nil {
				t.Logf("abort buffered: %v", err)
			}
			rcancel()
		}
	}
	if len(committed) < txns/2 {
		t.Fatalf("%d of %d transactions committed", len(committed), txns)
	}
	// A last committed transaction on every partition: once the consumer read it, it read
	// everything before it that is stable.
	eventually(t, "the last transaction", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prod.BeginTransaction(); err != nil {
			return err
		}
		var recs []*kgo.Record
		for p := range int32(3) {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("end-%d", p))})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			prod.EndTransaction(ctx, kgo.TryAbort)
			return err
		}
		return prod.EndTransaction(ctx, kgo.TryCommit)
	})

	// Read through a node up (not the one killed last).
	var reader *harness.Yard
	for i, y := range ys {
		if !containsInt(killed[1:], i+1) {
			reader = y
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(reader.KafkaAddr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	ends := 0
	deadline := time.Now().Add(120 * time.Second)
	for ends < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("read %d records and %d of 3 end records", len(seen), ends)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if strings.HasPrefix(string(r.Value), "end-") {
				ends++
				return
			}
			seen[string(r.Value)]++
		})
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %q read %d times", v, n)
		}
	}
	for i := range txns {
		n := 0
		for k := range perTxn {
			if seen[fmt.Sprintf("t%d-r%d", i, k)] > 0 {
				n++
			}
		}
		switch {
		case committed[i] && n != perTxn:
			t.Errorf("committed transaction %d: %d of %d records read", i, n, perTxn)
		case aborted[i] && n != 0:
			t.Errorf("aborted transaction %d: %d records read", i, n)
		case n != 0 && n != perTxn:
			t.Errorf("transaction %d in doubt: %d of %d records read (not all or nothing)", i, n, perTxn)
		}
	}
	t.Logf("%d transactions committed, %d aborted, %d records read", len(committed), len(aborted), len(seen))
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
