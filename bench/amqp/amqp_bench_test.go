// Package amqp_test benchmarks yard's AMQP front end the way issue 5 asks: 1 KiB transient
// messages, one producer with publisher confirms, one consumer with manual acks and prefetch
// 100, over real TCP to a real `yard serve` process (test/harness). It reports msgs/s and the
// p50/p99 end-to-end latency (publish call to delivery).
//
//	go test ./bench/amqp -run XXX -bench . -benchtime 200000x
//
// With YARD_BENCH_AMQP_URL set, the same benchmark runs against that broker instead (for
// instance a local RabbitMQ), to give a baseline measured in the same run.
//
// The Durable variants (issue 6) publish persistent messages (delivery-mode 2) to a durable
// queue: a confirm then means the message is on disk.
package amqp_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

const (
	messageBytes   = 1024
	prefetch       = 100
	confirmWindow  = 1000 // unconfirmed publishes the producer allows itself
	benchQueueName = "bench-transient"
	durableQueue   = "bench-durable"
)

func brokerURL(b *testing.B) string {
	if u := os.Getenv("YARD_BENCH_AMQP_URL"); u != "" {
		return u
	}
	y := harness.Start(b, harness.WithArgs("--log-level", "warn"))
	return "amqp://guest:guest@" + y.AMQPAddr + "/"
}

// BenchmarkConfirmedPublishManualAck publishes as fast as confirms allow. On a 2-core machine
// the producer outruns the consumer (amqp091-go writes every ack with its own syscall), so
// the queue grows and the latency it reports is mostly time spent waiting in the queue.
func BenchmarkConfirmedPublishManualAck(b *testing.B) { run(b, 0, false) }

// BenchmarkLatencyAt5kMsgs paces the producer at 5,000 msgs/s, under the consumer's capacity,
// so that the latency is the path's own: publish, route, enqueue, deliver.
func BenchmarkLatencyAt5kMsgs(b *testing.B) { run(b, 5000, false) }

// BenchmarkDurableConfirmedPublishManualAck is the flat-out run with persistent messages on a
// durable queue.
func BenchmarkDurableConfirmedPublishManualAck(b *testing.B) { run(b, 0, true) }

// BenchmarkDurableLatencyAt5kMsgs is the paced run with persistent messages on a durable queue.
func BenchmarkDurableLatencyAt5kMsgs(b *testing.B) { run(b, 5000, true) }

func run(b *testing.B, ratePerSec int, durable bool) {
	queueName, mode := benchQueueName, uint8(1)
	if durable {
		queueName, mode = durableQueue, 2
	}
	url := brokerURL(b)
	pc, err := amqp091.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	cc, err := amqp091.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	pch, _ := pc.Channel()
	cch, _ := cc.Channel()
	if _, err := pch.QueueDelete(queueName, false, false, false); err != nil {
		b.Fatal(err)
	}
	if _, err := pch.QueueDeclare(queueName, durable, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	if err := pch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	if err := cch.Qos(prefetch, 0, false); err != nil {
		b.Fatal(err)
	}
	deliveries, err := cch.Consume(queueName, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	confirms := pch.NotifyPublish(make(chan amqp091.Confirmation, confirmWindow))
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < b.N; i++ {
			d := <-deliveries
			lat = append(lat, time.Duration(time.Now().UnixNano()-int64(binary.BigEndian.Uint64(d.Body))))
			if err := d.Ack(false); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	body := make([]byte, messageBytes)
	b.SetBytes(messageBytes)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	acked, nacked := 0, 0
	for i := 0; i < b.N; i++ {
		if ratePerSec > 0 {
			due := start.Add(time.Duration(i) * time.Second / time.Duration(ratePerSec))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		for len(confirms) > 0 {
			if c := <-confirms; c.Ack {
				acked++
			} else {
				nacked++
			}
		}
		if i-acked-nacked >= confirmWindow {
			if c := <-confirms; c.Ack {
				acked++
			} else {
				nacked++
			}
		}
		binary.BigEndian.PutUint64(body, uint64(time.Now().UnixNano()))
		if err := pch.Publish("", queueName, false, false, amqp091.Publishing{DeliveryMode: mode, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	for acked+nacked < b.N {
		if c := <-confirms; c.Ack {
			acked++
		} else {
			nacked++
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if nacked > 0 {
		b.Fatalf("%d publishes nacked", nacked)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	if testing.Verbose() {
		fmt.Printf("n=%d elapsed=%s\n", b.N, elapsed)
	}
}
