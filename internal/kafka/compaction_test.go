package kafka

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/stream"
)

// TestCompactedTopicKeepsLatestPerKey: keyed updates and tombstones produced with franz-go to
// a cleanup.policy=compact topic with tiny segments are cleaned by the background cleaner;
// a consumer from the start then reads exactly the latest record of every key, at the offset
// it was produced at (across the gaps compaction leaves), tombstones included.
func TestCompactedTopicKeepsLatestPerKey(t *testing.T) {
	t.Parallel()
	ts := startServerStreams(t, func(c *stream.Config) { c.CleanerBackoff = 20 * time.Millisecond }, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	cr, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("1024"),
		"segment.ms":                kadm.StringPtr("100"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
	}, "changelog")
	if err != nil || cr.Err != nil {
		t.Fatalf("create: %v %v", err, cr.Err)
	}
	cl := ts.client(t, kgo.DefaultProduceTopic("changelog"), kgo.ProducerLinger(0))
	type latest struct {
		offset int64
		value  []byte // nil: tombstone
	}
	want := map[string]latest{}
	produced := 0
	produce := func(k string, v []byte) {
		r := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: v})
		if err := r.FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", k, err)
		}
		rec, _ := r.First()
		want[k] = latest{rec.Offset, v}
		produced++
	}
	for round := range 10 {
		for k := range 20 {
			produce(fmt.Sprintf("key-%02d", k), fmt.Appendf(nil, "value-%02d-%d", k, round))
		}
	}
	for k := range 5 {
		produce(fmt.Sprintf("key-%02d", k), nil)
	}

	// A record without a key is refused, as Kafka refuses it on a compacted topic.
	r := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("no key")})
	if err := r.FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record on a compacted topic: %v, want INVALID_RECORD", err)
	}

	// Wait until the cleaner removed every superseded record (it rolls the last segment
	// itself, by segment.ms).
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ts.st.CleanerStats().RecordsRemoved < int64(produced-len(want)) {
		select {
		case <-ctx.Done():
			t.Fatalf("cleaner removed %d records of %d superseded: %+v", ts.st.CleanerStats().RecordsRemoved,
				produced-len(want), ts.st.CleanerStats())
		case <-tick.C:
		}
	}

	c := ts.client(t, kgo.ConsumeTopics("changelog"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]latest{}
	n, last := 0, int64(-1)
	for n < len(want) {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if r.Offset <= last {
				t.Errorf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			if _, dup := got[string(r.Key)]; dup {
				t.Errorf("key %s read twice after compaction", r.Key)
			}
			got[string(r.Key)] = latest{r.Offset, r.Value}
		})
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.offset != w.offset || string(g.value) != string(w.value) || (g.value == nil) != (w.value == nil) {
			t.Errorf("key %s: got %+v (present %v), want %+v", k, g, ok, w)
		}
	}
}
