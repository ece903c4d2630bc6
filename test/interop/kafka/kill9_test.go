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

// TestKill9UnderProduceLoad: an idempotent franz-go producer (acks=all) keeps producing while
// the yard process is killed with SIGKILL four times and restarted on the same data dir and ports.
// Afterwards every acknowledged record is present, each partition holds its records in
// production order, and no record is there twice.
func TestKill9UnderProduceLoad(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic, partitions, total, kills = "crash", 3, 60000, 4

	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, y.KafkaAddr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(2*time.Minute),
	)

	pad := strings.Repeat(".", 1000) // 1 KiB records: fsyncs take long enough that kills land mid-request
	var mu sync.Mutex
	acked := make([]bool, total)
	nAcked := 0
	var produceErrs []error
	ackedEnough := make(chan struct{}, 8)
	go func() {
		for i := 0; i < total; i++ {
			r := &kgo.Record{Key: []byte("k" + strconv.Itoa(i%17)), Value: []byte(strconv.Itoa(i) + pad)}
			prod.Produce(ctx, r, func(r *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					produceErrs = append(produceErrs, err)
					return
				}
				i, _ := strconv.Atoi(strings.TrimRight(string(r.Value), "."))
				acked[i] = true
				nAcked++
				if nAcked%(total/(kills+1)) == 0 {
					ackedEnough <- struct{}{}
				}
			})
		}
	}()
	killOnProgress(t, ctx, y, kills, ackedEnough, func() int {
		mu.Lock()
		defer mu.Unlock()
		return nAcked
	})
	// Wait until every record has been attempted and acknowledged or failed.
	for {
		mu.Lock()
		done := nAcked+len(produceErrs) == total
		mu.Unlock()
		if done {
			break
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	mu.Lock()
	if len(produceErrs) > 0 {
		t.Logf("%d records failed (allowed: never acknowledged), first: %v", len(produceErrs), produceErrs[0])
	}
	t.Logf("%d of %d records acknowledged across %d kills", nAcked, total, kills)
	mu.Unlock()

	// Read everything back.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cons := newClient(t, y.KafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := make([]int, total)
	last := map[int32]int{}
	var got int64
	for got < want {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			i, err := strconv.Atoi(strings.TrimRight(string(r.Value), "."))
			if err != nil || i < 0 || i >= total {
				t.Fatalf("garbage record %q", r.Value)
			}
			seen[i]++
			if prev, ok := last[r.Partition]; ok && i <= prev {
				t.Errorf("partition %d: record %d after %d (order broken or duplicate)", r.Partition, i, prev)
			}
			last[r.Partition] = i
		})
	}
	var missing, dups []string
	for i := 0; i < total; i++ {
		if acked[i] && seen[i] == 0 {
			missing = append(missing, strconv.Itoa(i))
		}
		if seen[i] > 1 {
			dups = append(dups, fmt.Sprintf("%d(x%d)", i, seen[i]))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d acknowledged records lost: %s", len(missing), head(missing))
	}
	if len(dups) > 0 {
		t.Errorf("%d records duplicated: %s", len(dups), head(dups))
	}
}

func head(s []string) string {
	if len(s) > 20 {
		s = append(s[:20:20], "...")
	}
	return strings.Join(s, " ")
}

func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// killOnProgress kills yard with SIGKILL and restarts it kills times, each time once the
// producer reports progress on progress; acked is logged with each kill. The test fails if
// ctx ends first.
func killOnProgress(t *testing.T, ctx context.Context, y *harness.Yard, kills int, progress <-chan struct{}, acked func() int) {
	t.Helper()
	for kill := range kills {
		select {
		case <-progress:
		case <-ctx.Done():
			t.Fatalf("producer made no progress before kill %d", kill)
		}
		t.Logf("kill -9 #%d with %d records acknowledged", kill+1, acked())
		y.Kill()
		y.Restart()
	}
}
