package amqp

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

// BenchmarkStreamConsume measures an amqp091-go consumer (prefetch 100, an ack every 50)
// reading b.N stored 1 KiB messages from a stream queue: from one partition, from three
// (interleaved), and with x-stream-filter passing half of them (2*b.N stored).
func BenchmarkStreamConsume(b *testing.B) {
	for _, c := range []struct {
		name       string
		partitions int32
		filter     bool
	}{{"partitions=1", 1, false}, {"partitions=3", 3, false}, {"partitions=1/filter=half", 1, true}} {
		b.Run(c.name, func(b *testing.B) { benchStreamConsume(b, c.partitions, c.filter) })
	}
}

func benchStreamConsume(b *testing.B, partitions int32, filter bool) {
	dir := b.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	must(b, err)
	streams, err := stream.Open(stream.Config{Layout: datadir.New(dir)}, cat)
	must(b, err)
	b.Cleanup(func() { streams.Close() })
	_, url := startServer(b, Config{VHosts: newVHosts(vhost.Config{Streams: streams})})
	topic, err := streams.CreateTopic("bench", partitions, nil, false)
	must(b, err)
	body := make([]byte, 1024)
	stored := b.N
	if filter {
		stored = 2 * b.N
	}
	for i := range stored {
		region := "emea"
		if filter && i%2 == 1 {
			region = "apac"
		}
		p := topic.Partition(int32(i) % partitions)
		rec := appendStreamBatch(nil, int64(i), "", benchProps(region), body)
		res, err := p.Append(rec)
		must(b, err)
		if i >= stored-int(partitions) {
			must(b, p.WaitDurable(context.Background(), res.LastOffset))
		}
	}
	ch := openCh(b, dial(b, url))
	_, err = ch.QueueDeclare("bench", true, false, false, false, amqp091.Table{"x-queue-type": "stream"})
	must(b, err)
	must(b, ch.Qos(100, 0, false))
	args := amqp091.Table{"x-stream-offset": "first"}
	if filter {
		args["x-stream-filter"] = "emea"
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	msgs, err := ch.Consume("bench", "", false, false, false, false, args)
	must(b, err)
	for i := 1; i <= b.N; i++ {
		m := <-msgs
		if i%50 == 0 || i == b.N {
			must(b, m.Ack(true))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchProps(region string) []byte {
	p := wire.BasicProperties{Flags: wire.FlagBasicHeaders, Headers: wire.Table{"x-stream-filter-value": region}}
	return p.AppendTo(nil)
}
