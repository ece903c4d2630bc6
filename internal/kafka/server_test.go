package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceConsumeCodecs: franz-go produces keyed records with each codec and reads them back
// intact and in per-partition order.
func TestProduceConsumeCodecs(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := "codec-" + name
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		p := ts.client(t, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
		const n = 300
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("PKG-%d", i%7)), Value: []byte(fmt.Sprintf(`{"seq":%d,"codec":%q}`, i, name))})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", name, err)
		}
		c := ts.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := map[string][]string{}
		for count := 0; count < n; {
			fs := c.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatalf("%s: fetch: %v", name, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
				count++
			})
		}
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("PKG-%d", i%7)
			want := fmt.Sprintf(`{"seq":%d,"codec":%q}`, i, name)
			if got[k][0] != want {
				t.Fatalf("%s: key %s: got %q, want %q (per-key order broken or data changed)", name, k, got[k][0], want)
			}
			got[k] = got[k][1:]
		}
	}
}
