package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// TestKill9CommittedOffsetsSurvive: groups commit offsets (each group's own increasing
// sequence, spread over the partitions of __consumer_offsets) while yard is killed with
// SIGKILL; after the restart every group's committed offset is at least its last
// acknowledged commit and at most its last attempt, and __consumer_offsets is listed as an
// internal topic and readable.
func TestKill9CommittedOffsetsSurvive(t *testing.T) {
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, groups = "committed", 12

	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int64{}
	tried := map[string]int64{}
	stop := make(chan struct{})
	enough := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for w := 0; w < groups; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := fmt.Sprintf("kill9-group-%d", w)
			cl := kadm.NewClient(newClient(t, y.KafkaAddr, kgo.RequestRetries(0)))
			for off := int64(1); ; off++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				tried[g] = off
				mu.Unlock()
				var os kadm.Offsets
				os.Add(kadm.Offset{Topic: topic, Partition: int32(off % 2), At: off, LeaderEpoch: -1})
				os.Add(kadm.Offset{Topic: topic, Partition: int32((off + 1) % 2), At: off, LeaderEpoch: -1})
				resp, err := cl.CommitOffsets(ctx, g, os)
				if err != nil || resp.Error() != nil {
					return // the kill
				}
				mu.Lock()
				acked[g] = off
				if len(acked) == groups && off > 20 {
					select {
					case enough <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("commits made no progress")
	}
	y.Kill()
	close(stop)
	wg.Wait()
	y.Restart()

	adm = kadm.NewClient(newClient(t, y.KafkaAddr))
	for w := 0; w < groups; w++ {
		g := fmt.Sprintf("kill9-group-%d", w)
		fetched, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			o, ok := fetched.Lookup(topic, p)
			if !ok || o.At < acked[g] || o.At > tried[g] {
				t.Errorf("%s %s-%d: committed %d (found %v), acknowledged %d, tried %d", g, topic, p, o.At, ok, acked[g], tried[g])
			}
		}
	}
	meta, err := adm.Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	td, ok := meta.Topics["__consumer_offsets"]
	if !ok || !td.IsInternal || len(td.Partitions) != 50 {
		t.Fatalf("__consumer_offsets after restart: found %v, internal %v, %d partitions", ok, td.IsInternal, len(td.Partitions))
	}
	ends, err := adm.ListEndOffsets(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	var records int64
	ends.Each(func(o kadm.ListedOffset) { records += o.Offset })
	if records < groups*20 {
		t.Fatalf("__consumer_offsets holds %d records", records)
	}
}
