package kafka

import (
	"fmt"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConcurrentProducersAndConsumers: several idempotent producers write to the same
// partitions while consumers long-poll them; every record arrives once, and each producer's
// records keep their order within a partition.
func TestConcurrentProducersAndConsumers(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	const producers, perProducer, partitions = 4, 2000, 3
	if _, err := ts.admin(t).CreateTopic(ctx, partitions, 1, nil, "conc"); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		counts map[string]int
		last   map[string]int // "producer/partition" -> last sequence
	}
	consume := func() *seen {
		s := &seen{counts: map[string]int{}, last: map[string]int{}}
		c := ts.client(t, kgo.ConsumeTopics("conc"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		for n := 0; n < producers*perProducer; {
			fs := c.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Error(err)
				return s
			}
			fs.EachRecord(func(r *kgo.Record) {
				n++
				var p, i int
				fmt.Sscanf(string(r.Value), "%d/%d", &p, &i)
				s.counts[string(r.Value)]++
				k := fmt.Sprintf("%d/%d", p, r.Partition)
				if prev, ok := s.last[k]; ok && i <= prev {
					t.Errorf("producer %d partition %d: %d after %d", p, r.Partition, i, prev)
				}
				s.last[k] = i
			})
		}
		return s
	}
	results := make(chan *seen, 2)
	for c := 0; c < 2; c++ {
		go func() { results <- consume() }()
	}
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := ts.client(t, kgo.DefaultProduceTopic("conc"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			for i := 0; i < perProducer; i++ {
				cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%d/%d", p, i))}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for c := 0; c < 2; c++ {
		s := <-results
		if len(s.counts) != producers*perProducer {
			t.Fatalf("consumer saw %d distinct records, want %d", len(s.counts), producers*perProducer)
		}
		for v, n := range s.counts {
			if n != 1 {
				t.Fatalf("record %s seen %d times", v, n)
			}
		}
	}
}
