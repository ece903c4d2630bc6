package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// TestKill9ConsumerGroupProtocolSurvives: a franz-go consumer in a KIP-848 group (the
// "consumer" group protocol, ServerSideBalancer) consumes and commits; a second member joins
// and leaves (so the group epoch is past what a fresh join would give); yard is killed with
// SIGKILL and restarted. ConsumerGroupDescribe then shows the group at the same epoch with
// the member at its member epoch and assignment, the member heartbeats on without being
// fenced (its partitions are never lost) and consumes what is produced next from its
// committed offsets, with no record twice. Before the KIP-848 records were written and
// restored, the group was gone after the restart and the member was fenced and rejoined.
func TestKill9ConsumerGroupProtocolSurvives(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, group, perRound = "kip848-kill9", "kip848-kill9-group", 100

	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, y.KafkaAddr, kgo.DefaultProduceTopic(topic))
	produce := func(from int) {
		t.Helper()
		for i := from; i < from+perRound; i++ {
			v := strconv.Itoa(i)
			if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0)

	var lost atomic.Int32
	member := func(extra ...kgo.Opt) *kgo.Client {
		return newClient(t, y.KafkaAddr, append([]kgo.Opt{
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
			kgo.Balancers(kgo.RangeBalancer()), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		}, extra...)...)
	}
	cons := member(kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { lost.Add(1) }))
	var mu sync.Mutex
	seen := map[string]int{}
	consumeUntil := func(want int) {
		t.Helper()
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= want {
				return
			}
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fs := cons.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records", n, want)
			}
			fs.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				seen[string(r.Value)]++
				mu.Unlock()
			})
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Logf("commit: %v", err) // retried with the next poll
			}
		}
	}
	consumeUntil(perRound)

	describe := func(cond func(kadm.DescribedConsumerGroup) bool) kadm.DescribedConsumerGroup {
		t.Helper()
		var last kadm.DescribedConsumerGroup
		for ctx.Err() == nil {
			d, err := adm.DescribeConsumerGroups(ctx, group)
			if err == nil {
				last = d[group]
				if last.Err == nil && cond(last) {
					return last
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("group never as expected; last %+v", last)
		return last
	}
	alone := func(d kadm.DescribedConsumerGroup) bool {
		return d.State == "Stable" && len(d.Members) == 1 && len(d.Members[0].Assignment[topic]) == 4
	}
	describe(alone)
	// A second member joins and leaves: two more epoch bumps than a first join.
	other := member()
	describe(func(d kadm.DescribedConsumerGroup) bool { return d.State == "Stable" && len(d.Members) == 2 })
	other.Close()
	before := describe(alone)
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	y.Kill()
	y.Restart()

	after, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil || after[group].Err != nil {
		t.Fatalf("describe after the restart: %v %v", err, after[group].Err)
	}
	got := after[group]
	bm, gm := before.Members[0], got.Members
	if got.Epoch != before.Epoch || got.AssignmentEpoch != before.AssignmentEpoch || len(gm) != 1 ||
		gm[0].MemberID != bm.MemberID || gm[0].MemberEpoch != bm.MemberEpoch || fmt.Sprint(gm[0].Assignment) != fmt.Sprint(bm.Assignment) {
		t.Fatalf("group after the restart:\n got %+v\nwant %+v", got, before)
	}

	produce(perRound)
	consumeUntil(2 * perRound)
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s consumed %d times", v, n)
		}
	}
	if n := lost.Load(); n != 0 {
		t.Errorf("the member lost its partitions %d times across the restart", n)
	}
	final := describe(alone)
	if final.Members[0].MemberID != bm.MemberID || final.Members[0].MemberEpoch != bm.MemberEpoch {
		t.Errorf("member after consuming on: %+v, before the restart %+v", final.Members[0], bm)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 2*perRound {
		t.Errorf("committed offsets add up to %d, want %d", total, 2*perRound)
	}
}
