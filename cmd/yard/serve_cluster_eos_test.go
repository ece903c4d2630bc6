package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeClusterGroupTransact runs franz-go's GroupTransactSession (consume, produce and
// commit the consumed offsets in one transaction: exactly-once processing, as Kafka Streams'
// exactly_once_v2) against three processes. The transaction coordinator is SIGKILLed mid-
// stream, restarted, then the group's coordinator is SIGKILLed too. Every input record is
// then in the output exactly once for a read_committed consumer, and the group's committed
// offsets cover the whole input: TxnOffsetCommit's offsets (written by the group's
// coordinator to the replicated __consumer_offsets) count only with the transaction's marker.
func TestServeClusterGroupTransact(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3, "--kafka-transaction-state-partitions", "5", "--kafka-group-initial-rebalance-delay", "0s")
	const in, out, groupID, txnID, n = "eos-in", "eos-out", "eos-group", "eos-txn", 600
	for _, topic := range []string{in, out} {
		createTopic(t, ys[0], topic, 3)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.DefaultProduceTopic(in),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("in-%d", i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce input: %v", err)
	}
	cancel()
	prod.Close()

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.DefaultProduceTopic(out),
		kgo.TransactionalID(txnID), kgo.TransactionTimeout(60*time.Second),
		kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(10*time.Second), kgo.RecordRetries(1000), kgo.RetryTimeout(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	processed, idle := 0, 0
	var killed []int32
	deadline := time.Now().Add(180 * time.Second)
	for processed < n || idle < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("processed %d of %d input records (idle %d)", processed, n, idle)
		}
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := sess.PollRecords(pctx, 40)
		pcancel()
		if fs.Empty() {
			idle++
			continue
		}
		idle = 0
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var outs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			outs = append(outs, &kgo.Record{Value: []byte("out:" + string(r.Value))})
		})
		ectx, ecancel := context.WithTimeout(context.Background(), 120*time.Second)
		perr := sess.ProduceSync(ectx, outs...).FirstErr()
		switch {
		case len(killed) == 0 && processed >= n/3:
			var c int32
			eventually(t, "the transaction coordinator", func() error {
				if c = txnCoordinatorOf(t, ys[0], txnID); c < 1 {
					return errors.New("none")
				}
				return nil
			})
			ys[c-1].Kill()
			killed = append(killed, c)
			t.Logf("node %d (the transaction coordinator) killed with a transaction open", c)
		case len(killed) == 1 && processed >= 2*n/3:
			ys[killed[0]-1].Restart()
			var c int32
			eventually(t, "the group coordinator", func() error {
				if c = groupCoordinatorOf(t, ys[killed[0]-1], groupID); c < 1 {
					return errors.New("none")
				}
				return nil
			})
			ys[c-1].Kill()
			killed = append(killed, c)
			t.Logf("node %d (the group coordinator) killed with a transaction open", c)
		}
		committed, err := sess.End(ectx, kgo.TransactionEndTry(perr == nil))
		ecancel()
		if err != nil || !committed {
			t.Logf("transaction of %d records: committed %v, produce %v, end %v", len(outs), committed, perr, err)
		}
		processed += len(outs)
	}

	if len(killed) != 2 {
		t.Fatalf("killed %v, want two nodes killed mid-stream", killed)
	}
	var reader = ys[0]
	for i, y := range ys {
		if int32(i+1) != killed[len(killed)-1] {
			reader = y
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(reader.KafkaAddr), kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	for rdeadline, quiet := time.Now().Add(90*time.Second), 0; quiet < 3; {
		if time.Now().After(rdeadline) {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		got := 0
		fs.EachRecord(func(r *kgo.Record) {
			seen[strings.TrimPrefix(string(r.Value), "out:")]++
			got++
		})
		if got == 0 && len(seen) >= n {
			quiet++
		}
	}
	for v, c := range seen {
		if c != 1 {
			t.Errorf("%q in the output %d times", v, c)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct inputs in the output, want %d", len(seen), n)
	}
	eventually(t, "the group's committed offsets", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		offs, err := adminOf(t, reader).FetchOffsets(ctx, groupID)
		if err != nil {
			return err
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		if sum != n {
			return fmt.Errorf("committed offsets sum to %d, want %d", sum, n)
		}
		return nil
	})
	t.Logf("processed %d input records (with reprocessing), %d in the output", processed, len(seen))
}
