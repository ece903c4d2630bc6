package kafka

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Benchmarks of the protocol path with franz-go against an in-process server over loopback
// TCP, data on the real file system under the default policy (fsync before acknowledging).
// Compare with internal/log's BenchmarkAppend run in the same session.
const (
	benchRecordBytes = 1024
	benchPartitions  = 6
)

// BenchmarkProduce: b.N records of 1 KiB, keyless (spread over 6 partitions), acks=all,
// idempotent; reports records/s, MB/s and the p50/p99 time from Produce to acknowledgement,
// with at most `window` records unacknowledged (the latency a client sees depends on how
// much it queues; kgo's own buffer bound is 10000).
func BenchmarkProduce(b *testing.B) {
	for _, window := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("window-%d", window), func(b *testing.B) { benchProduce(b, window) })
	}
}

func benchProduce(b *testing.B, window int) {
	ts := startServer(b, nil)
	ctx := context.Background()
	if _, err := ts.admin(b).CreateTopic(ctx, benchPartitions, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	cl := ts.client(b, kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	value := make([]byte, benchRecordBytes)
	// Warm up: connections, metadata, producer ID.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	b.SetBytes(benchRecordBytes)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sem := make(chan struct{}, window)
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		sem <- struct{}{}
		t0 := time.Now()
		i := i
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			lat[i] = time.Since(t0)
			<-sem
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	reportThroughput(b, b.N, elapsed)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkFetch: b.N records of 1 KiB are produced first (not timed), then one franz-go
// consumer reads them all from the start of the 6 partitions.
func BenchmarkFetch(b *testing.B) {
	ts := startServer(b, nil)
	ctx := context.Background()
	if _, err := ts.admin(b).CreateTopic(ctx, benchPartitions, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	p := ts.client(b, kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := make([]byte, benchRecordBytes)
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		wg.Add(1)
		p.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	c := ts.client(b, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))
	b.SetBytes(benchRecordBytes)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			b.Fatal(err)
		}
		n += fs.NumRecords()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportThroughput(b, b.N, elapsed)
}

func reportThroughput(b *testing.B, n int, elapsed time.Duration) {
	secs := elapsed.Seconds()
	b.ReportMetric(float64(n)/secs, "records/s")
	b.ReportMetric(float64(n)*benchRecordBytes/secs/1e6, "MB/s")
}
