package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/txn"
	"github.com/yardmq/yard/test/harness"
)

// refusingPartitions fails every marker write: the coordinator records the outcome and
// cannot complete it, as when the process dies between the two.
type refusingPartitions struct{}

func (refusingPartitions) Exists(txn.TopicPartition) bool { return true }
func (refusingPartitions) WriteMarker(context.Context, txn.TopicPartition, int64, int16, int32, bool) error {
	return errors.New("the process died before writing markers")
}

// readCommitted reads topic from the start as a read_committed consumer until it has seen
// want records or nothing more comes for a while.
func readCommitted(t *testing.T, addr, topic string, want int) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var out []string
	for len(out) < want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		timedOut := ctx.Err() != nil
		cancel()
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		if timedOut {
			break
		}
	}
	return out
}

// TestKill9TransactionRecovery: transactional data written before a kill -9 stays invisible
// to read_committed consumers until its transaction ends. A transaction that was ongoing at
// the kill continues after the restart (its producer commits it); one whose commit was
// recorded but whose markers were not written when the process died is completed by the
// restarted coordinator, and its records become visible.
func TestKill9TransactionRecovery(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "txk"); err != nil {
		t.Fatal(err)
	}
	begin := func(id, value string) *kgo.Client {
		p := newClient(t, y.KafkaAddr, kgo.TransactionalID(id), kgo.DefaultProduceTopic("txk"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(100), kgo.RetryTimeout(time.Minute))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for part := int32(0); part < 2; part++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(value), Partition: part}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	begin("prepared", "p") // first, so that the ongoing one does not hold the LSO below it
	ongoing := begin("ongoing", "o")
	y.Kill()

	// The second transaction's commit is recorded durably, its markers never written.
	tc, err := txn.Open(txn.Config{
		Dir:                datadir.New(y.DataDir).TransactionState(),
		LogOptions:         log.Options{SyncPolicy: log.SyncAlways},
		Partitions:         refusingPartitions{},
		AllocateProducerID: func() (int64, error) { return -1, errors.New("none") },
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := tc.Describe("prepared")
	if err != nil || d.State != txn.Ongoing || len(d.Partitions) != 2 {
		t.Fatalf("after kill -9: %+v %v", d, err)
	}
	if err := endErr(tc.End("prepared", d.PID, d.Epoch, true, false)); err != nil {
		t.Fatal(err)
	}
	if d, _ := tc.Describe("prepared"); d.State != txn.PrepareCommit {
		t.Fatalf("state %s, want PrepareCommit", d.State)
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}

	y.Restart()
	if got := readCommitted(t, y.KafkaAddr, "txk", 4); len(got) != 2 || got[0] != "p" || got[1] != "p" {
		t.Fatalf("read_committed after restart saw %v, want the prepared transaction's [p p]", got)
	}
	ds, err := adm.DescribeTransactions(ctx, "prepared", "ongoing")
	if err != nil {
		t.Fatal(err)
	}
	if s := ds["prepared"].State; s != "CompleteCommit" {
		t.Errorf("prepared: state %s, want CompleteCommit", s)
	}
	if s := ds["ongoing"].State; s != "Ongoing" {
		t.Errorf("ongoing: state %s, want Ongoing", s)
	}
	if err := ongoing.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("committing the transaction open across the kill: %v", err)
	}
	got := readCommitted(t, y.KafkaAddr, "txk", 4)
	if len(got) != 4 {
		t.Fatalf("read_committed after the commit saw %v, want 4 records", got)
	}
}

// endErr is End's error alone.
func endErr(_ int64, _ int16, err error) error { return err }
