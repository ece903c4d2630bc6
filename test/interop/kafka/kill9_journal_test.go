package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// ackedAt is where the broker said a record went.
type ackedAt struct {
	partition int32
	offset    int64
}

// TestKill9Journal: with --kafka-journal, an idempotent franz-go producer (acks=all) and a
// transactional one (commits and aborts, markers in every partition) write to six partitions
// while yard is killed with SIGKILL three times and restarted. Afterwards a read_committed
// consumer finds every acknowledged record (and every record of a committed transaction)
// exactly once at the offset it was acknowledged at, no record of an aborted transaction, and
// no record twice: the producer's retries across the kills were recognised as duplicates.
func TestKill9Journal(t *testing.T) {
	y := harness.Start(t, harness.WithArgs("--kafka-journal"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic, partitions, total, kills = "journaled", 6, 30000, 3

	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, y.KafkaAddr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(2*time.Minute),
	)

	pad := strings.Repeat(".", 1000)
	var mu sync.Mutex
	acked := map[string]ackedAt{} // value -> where; idempotent records and committed transactions
	aborted := map[string]bool{}
	nAcked, nFailed := 0, 0
	ackedEnough := make(chan struct{}, 8)
	// The two producers advance together: a transaction ends for every chunk of records, so
	// that the kills land in both workloads.
	const chunk = 1000
	txnEnded := make(chan struct{}, 1)
	go func() {
		for i := range total {
			if i%chunk == 0 && i > 0 {
				select {
				case <-txnEnded:
				case <-ctx.Done():
					return
				}
			}
			r := &kgo.Record{Key: []byte("k" + strconv.Itoa(i%23)), Value: []byte("i" + strconv.Itoa(i) + pad)}
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					nFailed++
					return
				}
				acked[strings.TrimRight(string(r.Value), ".")] = ackedAt{r.Partition, r.Offset}
				nAcked++
				if nAcked%(total/(kills+1)) == 0 {
					ackedEnough <- struct{}{}
				}
			})
		}
	}()

	// Transactions until the idempotent producer is done: ten records over every partition,
	// then a commit (or, one in four, an abort). A transaction a kill interrupts counts for
	// nothing; its producer is replaced (InitProducerID fences and ends what it left open).
	txnDone := make(chan struct{})
	stopTxn := make(chan struct{})
	go func() {
		defer close(txnDone)
		newTxn := func() *kgo.Client {
			cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.TransactionalID("journal-txn"),
				kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.RequestRetries(1000), kgo.RetryTimeout(time.Minute))
			if err != nil {
				panic(err)
			}
			return cl
		}
		cl := newTxn()
		defer func() { cl.Close() }()
		for n := 0; ; n++ {
			select {
			case <-stopTxn:
				return
			default:
			}
			commit := n%4 != 3
			var recs []*kgo.Record
			err := cl.BeginTransaction()
			for k := 0; k < 10 && err == nil; k++ {
				r := &kgo.Record{Value: []byte(fmt.Sprintf("t%d-%d", n, k)), Partition: int32(k % partitions)}
				err = cl.ProduceSync(ctx, r).FirstErr()
				recs = append(recs, r)
			}
			if err == nil {
				err = cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
			}
			mu.Lock()
			for _, r := range recs {
				switch {
				case err == nil && commit:
					acked[string(r.Value)] = ackedAt{r.Partition, r.Offset}
				case err == nil:
					aborted[string(r.Value)] = true
				}
			}
			mu.Unlock()
			select {
			case txnEnded <- struct{}{}:
			default:
			}
			if err != nil && ctx.Err() == nil {
				t.Logf("transaction %d: %v (its producer is replaced)", n, err)
				cl.Close()
				cl = newTxn()
			}
		}
	}()

	killOnProgress(t, ctx, y, kills, ackedEnough, func() int {
		mu.Lock()
		defer mu.Unlock()
		return nAcked
	})
	for {
		mu.Lock()
		done := nAcked+nFailed == total
		mu.Unlock()
		if done {
			break
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	close(stopTxn)
	<-txnDone
	mu.Lock()
	t.Logf("%d of %d idempotent records acknowledged (%d failed), %d records acknowledged in all, %d aborted",
		nAcked, total, nFailed, len(acked), len(aborted))
	mu.Unlock()

	cons := newClient(t, y.KafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string][]ackedAt{}
	found := 0
	for found < len(acked) {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cons.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			v := strings.TrimRight(string(r.Value), ".")
			seen[v] = append(seen[v], ackedAt{r.Partition, r.Offset})
			if _, ok := acked[v]; ok && len(seen[v]) == 1 {
				found++
			}
		})
		if timedOut {
			break
		}
	}
	var missing, moved, dups, abortedSeen []string
	for v, at := range acked {
		switch got := seen[v]; {
		case len(got) == 0:
			missing = append(missing, v)
		case got[0] != at:
			moved = append(moved, fmt.Sprintf("%s acknowledged at %d/%d, read at %d/%d", v, at.partition, at.offset, got[0].partition, got[0].offset))
		}
	}
	for v, got := range seen {
		if len(got) > 1 {
			dups = append(dups, fmt.Sprintf("%s(x%d)", v, len(got)))
		}
		if aborted[v] {
			abortedSeen = append(abortedSeen, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged records lost: %s", len(missing), head(missing))
	}
	if len(moved) > 0 {
		t.Errorf("%d records not at their acknowledged offset: %s", len(moved), head(moved))
	}
	if len(dups) > 0 {
		t.Errorf("%d records duplicated: %s", len(dups), head(dups))
	}
	if len(abortedSeen) > 0 {
		t.Errorf("%d records of aborted transactions read by a read_committed consumer: %s", len(abortedSeen), head(abortedSeen))
	}
}
