// Command natsdriver is the NATS JetStream load generator of yard's comparison benchmarks
// (bench/run.sh). It maps the Kafka-side workload onto JetStream: one file-backed stream with
// one subject (a stream has one leader, as a partition does), publishes with acks (async,
// at most -window unacknowledged), and an ordered consumer reading the stream (no per-message
// acks, as a Kafka consumer; it pulls up to 5,000 messages ahead, as a Kafka consumer fetches
// megabytes at once). It writes the same JSON result as bench/driver.
//
// This is a module of its own so that yard's go.mod does not carry NATS: it also pins the
// nats-server that run.sh builds (go build github.com/nats-io/nats-server/v2 in this directory).
//
//	natsdriver -url nats://127.0.0.1:4222 -rate 50000 -duration 20s -out r.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/yardmq/yard/bench/internal/load"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsdriver:", err)
		os.Exit(1)
	}
}

type pending struct {
	f  jetstream.PubAckFuture
	at time.Time
}

func run(args []string) error {
	var c load.Common
	fs := flag.NewFlagSet("natsdriver", flag.ExitOnError)
	c.Flags(fs)
	url := fs.String("url", nats.DefaultURL, "server URL")
	window := fs.Int("window", 1000, "unacknowledged publishes allowed")
	consume := fs.Bool("consume", true, "also consume and measure end-to-end latency")
	_ = fs.Parse(args)
	if err := c.Check(); err != nil {
		return err
	}
	name := fmt.Sprintf("bench%d", time.Now().UnixNano())
	subject := name + ".records"
	res := &load.Result{Broker: c.Broker, Protocol: "nats", Tool: "nats.go", Workload: c.Workload, Rate: c.Rate,
		Acks: "all", Codec: "none", Producers: 1, Size: c.Size, Started: load.Now()}

	nc, err := nats.Connect(*url)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(*window))
	if err != nil {
		return fmt.Errorf("cannot open JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subject},
		Storage: jetstream.FileStorage, Replicas: 1})
	cancel()
	if err != nil {
		return fmt.Errorf("cannot create stream: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	}()

	start := time.Now()
	ack := load.NewSeries(start, c.Warmup, c.Duration)
	e2e := load.NewSeries(start, c.Warmup, c.Duration)
	var acked, consumed, errs atomic.Uint64
	var lastErr atomic.Value

	if *consume {
		res.Consumers = 1
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		cancel()
		if err != nil {
			return fmt.Errorf("cannot create consumer: %w", err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			t := time.Now()
			if d := m.Data(); len(d) >= 8 {
				e2e.Record(t, t.Sub(load.Stamped(d)))
			}
			consumed.Add(1)
		}, jetstream.PullMaxMessages(5000))
		if err != nil {
			return fmt.Errorf("cannot consume: %w", err)
		}
		defer cc.Stop()
	}

	// Acks come back in order for one stream: one goroutine waits on them first to last.
	futures := make(chan pending, *window+1)
	var awg sync.WaitGroup
	awg.Add(1)
	go func() {
		defer awg.Done()
		for p := range futures {
			select {
			case <-p.f.Ok():
				t := time.Now()
				ack.Record(t, t.Sub(p.at))
				acked.Add(1)
			case err := <-p.f.Err():
				errs.Add(1)
				lastErr.Store(err.Error())
			}
		}
	}()

	var before load.ProcSample
	var warm sync.Once
	pctx, pcancel := context.WithDeadline(context.Background(), start.Add(c.Duration))
	defer pcancel()
	p := &load.Pacer{Rate: c.Rate, Start: start}
	var published uint64
publish:
	for pctx.Err() == nil {
		n := p.Next(pctx)
		for i := 0; i < n && pctx.Err() == nil; i++ {
			if time.Since(start) >= c.Warmup {
				warm.Do(func() { before, _ = load.SampleProc(c.Pid) })
			}
			b := make([]byte, c.Size) // the client keeps it until the ack
			t := time.Now()
			load.Stamp(b, t)
			f, err := js.PublishAsync(subject, b, jetstream.WithStallWait(c.Drain))
			if err != nil {
				if errors.Is(err, nats.ErrConnectionClosed) {
					res.Note = err.Error()
					break publish
				}
				errs.Add(1)
				lastErr.Store(err.Error())
				continue
			}
			published++
			futures <- pending{f: f, at: t}
		}
	}
	after, _ := load.SampleProc(c.Pid)
	close(futures)
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(c.Drain):
	}
	awg.Wait()
	if *consume {
		deadline := time.Now().Add(c.Drain)
		for consumed.Load() < acked.Load() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}

	if !*consume {
		e2e = nil
	}
	res.Summarize(c.Duration-c.Warmup, ack, e2e)
	res.Errors = errs.Load()
	if e, ok := lastErr.Load().(string); ok {
		res.Note = "last error: " + e
	}
	res.BrokerCost(before, after, res.Records)
	return res.Write(c.Out)
}
