package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkProducePipelined is the request pattern of Kafka's Java producer (and so of its
// ProducerPerformance tool) once its buffer holds a backlog: one connection, at most 5
// requests in flight (max.in.flight.requests.per.connection), each carrying one 16 KiB batch
// (batch.size: 15 records of 1 KiB) for each of the 6 partitions, answered in order. Its
// records/s is the most the broker lets such a producer send; a producer offered less than that
// catches up after a stall only as fast as the difference, so the tail at a fixed rate grows
// with every millisecond a request spends waiting. b.N counts requests; p50/p99 are request
// round trips.
func BenchmarkProducePipelined(b *testing.B) {
	const inFlight, recordsPerBatch = 5, 15
	ts := startServer(b, nil)
	if _, err := ts.admin(b).CreateTopic(context.Background(), benchPartitions, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	values := make([]string, recordsPerBatch)
	for i := range values {
		values[i] = strings.Repeat("v", benchRecordBytes)
	}
	batch := makeBatch(-1, -1, -1, values...)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "bench"
	for p := range int32(benchPartitions) {
		rt.Partitions = append(rt.Partitions, kmsg.ProduceRequestTopicPartition{Partition: p, Records: batch})
	}
	req.Topics = []kmsg.ProduceRequestTopic{rt}
	frame := func(corr int32) []byte {
		f := frameFor(req, corr, "bench")
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...)
	}

	sent := make(chan time.Time, inFlight) // send times of requests in flight, in order
	lat := make([]time.Duration, 0, b.N)
	readErr := make(chan error, 1)
	go func() {
		br := bufio.NewReader(c)
		var size [4]byte
		buf := make([]byte, 0, 4096)
		for range b.N {
			if _, err := io.ReadFull(br, size[:]); err != nil {
				readErr <- err
				return
			}
			buf = buf[:binary.BigEndian.Uint32(size[:])]
			if _, err := io.ReadFull(br, buf); err != nil {
				readErr <- err
				return
			}
			resp := kmsg.NewPtrProduceResponse()
			resp.Version = req.Version
			if err := resp.ReadFrom(buf[5:]); err != nil { // correlation ID, header tags
				readErr <- err
				return
			}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						readErr <- kerr.ErrorForCode(p.ErrorCode)
						return
					}
				}
			}
			lat = append(lat, time.Since(<-sent))
		}
		readErr <- nil
	}()
	b.SetBytes(benchPartitions * recordsPerBatch * benchRecordBytes)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		f := frame(int32(i))
		sent <- time.Now() // blocks while inFlight requests are unanswered
		if _, err := c.Write(f); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-readErr; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N*benchPartitions*recordsPerBatch)/elapsed.Seconds(), "records/s")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
