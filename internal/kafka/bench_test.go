package kafka

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
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

// BenchmarkProduceTLS: BenchmarkProduce's window-1000 case over PLAINTEXT and over an SSL
// listener (TLS 1.3, ECDSA P-256 certificate), with fsync before acknowledging and without
// (where the cost of TLS is not hidden behind the disk). Run both in one sitting to compare.
func BenchmarkProduceTLS(b *testing.B) {
	for _, sync := range []log.SyncPolicy{log.SyncAlways, log.SyncNever} {
		for _, useTLS := range []bool{false, true} {
			name := fmt.Sprintf("sync-%s/plaintext", sync)
			if useTLS {
				name = fmt.Sprintf("sync-%s/tls", sync)
			}
			b.Run(name, func(b *testing.B) { benchProduceWith(b, 1000, sync, useTLS) })
		}
	}
}

// BenchmarkProduceJournal: BenchmarkProduce's windows of 100 and 1000 without and with the
// produce journal (stream.Config.Journal, --kafka-journal): one journal fsync per group
// commit instead of one per partition. Run both in one sitting to compare.
func BenchmarkProduceJournal(b *testing.B) {
	for _, window := range []int{100, 1000} {
		for _, journal := range []bool{false, true} {
			name := fmt.Sprintf("window-%d/journal-off", window)
			if journal {
				name = fmt.Sprintf("window-%d/journal-on", window)
			}
			b.Run(name, func(b *testing.B) { benchProduceOpts(b, window, log.SyncAlways, false, journal) })
		}
	}
}

func benchProduce(b *testing.B, window int) { benchProduceWith(b, window, log.SyncAlways, false) }

func benchProduceWith(b *testing.B, window int, policy log.SyncPolicy, useTLS bool) {
	benchProduceOpts(b, window, policy, useTLS, false)
}

func benchProduceOpts(b *testing.B, window int, policy log.SyncPolicy, useTLS, journal bool) {
	var store *tlsconf.Store
	var ca *tlsconftest.CA
	if useTLS {
		ca = tlsconftest.NewCA(b, "bench CA")
		files := ca.WriteServer(b, b.TempDir(), "yard")
		var err error
		if store, err = tlsconf.Open(tlsconf.Config{CertFile: files.Cert, KeyFile: files.Key}); err != nil {
			b.Fatal(err)
		}
	}
	ts := startServerStreams(b, func(c *stream.Config) {
		c.SyncPolicy = policy
		if journal {
			c.JournalDir, c.Journal = c.Layout.KafkaJournal(), true
		}
	}, func(c *Config) { c.TLS = store })
	addr := ts.addr
	var opts []kgo.Opt
	if useTLS {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go ts.srv.ServeListener(ln, ListenerSpec{Name: "SSL", Protocol: SSL}, false)
		addr = ln.Addr().String()
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}))
	}
	ctx := context.Background()
	if _, err := ts.admin(b).CreateTopic(ctx, benchPartitions, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
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
	cpu0 := processCPU()
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
	if cpu := processCPU() - cpu0; cpu > 0 {
		// Client and server together: less sensitive to a loaded machine than throughput.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/record")
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
