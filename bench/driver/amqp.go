package main

import (
	"github.com/yardmq/yard/bench/internal/load"

	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// runAMQP publishes to one queue from -producers connections, each with publisher confirms
// and at most -window unconfirmed messages, and consumes it from -consumers connections with
// manual acks and -prefetch; it measures publish-to-confirm and publish-to-delivery latency.
// Every message is still published, confirmed and acked one by one (no multiple acks); what
// keeps the driver's own CPU down on a machine it shares with the broker is below: writes
// gathered into fewer system calls (-batch-writes, batchconn.go) and a larger GOGC
// (-gc-percent), the same against every broker.
func runAMQP(args []string) error {
	var c load.Common
	fs := flag.NewFlagSet("amqp", flag.ExitOnError)
	c.Flags(fs)
	url := fs.String("url", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	producers := fs.Int("producers", 1, "producer connections")
	consumers := fs.Int("consumers", 1, "consumer connections")
	persistent := fs.Bool("persistent", true, "persistent messages on a durable queue (else transient on a non-durable one)")
	prefetch := fs.Int("prefetch", 100, "consumer prefetch (basic.qos)")
	window := fs.Int("window", 1000, "unconfirmed publishes each producer allows itself")
	batch := fs.Bool("batch-writes", true, "gather the client's writes into fewer system calls (batchconn.go); false for amqp091-go's own write per method")
	gcPercent := fs.Int("gc-percent", 1000, "the driver's own GOGC (see below)")
	cpuprofile := fs.String("cpuprofile", "", "write the driver's own CPU profile to this file")
	_ = fs.Parse(args)
	if err := c.Check(); err != nil {
		return err
	}
	// amqp091-go allocates a few KiB per message (frames, a Delivery, a DeferredConfirmation
	// per publish) over a live heap of a few MiB, so at Go's default GOGC of 100 the driver
	// collected dozens of times a second: about a tenth of its CPU flat out (mark, sweep and
	// assists). A larger GOGC spends memory (a few tens of MiB) instead of CPU.
	debug.SetGCPercent(*gcPercent)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("cannot create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cannot start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	queue := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	res := &load.Result{Broker: c.Broker, Protocol: "amqp", Tool: "amqp091-go", Workload: c.Workload, Rate: c.Rate,
		Persist: *persistent, Producers: *producers, Consumers: *consumers, Size: c.Size, Started: load.Now()}

	dial := func(url string) (*amqp091.Connection, error) {
		// amqp091.Dial's own configuration, with the write gathering of batchconn.go.
		cfg := amqp091.Config{Heartbeat: 10 * time.Second, Locale: "en_US"}
		if *batch {
			tcp := amqp091.DefaultDial(30 * time.Second)
			cfg.Dial = func(network, addr string) (net.Conn, error) {
				c, err := tcp(network, addr)
				if err != nil {
					return nil, err
				}
				return newBatchConn(c), nil
			}
		}
		return amqp091.DialConfig(url, cfg)
	}
	setup, err := dial(*url)
	if err != nil {
		return fmt.Errorf("cannot connect to %s: %w", *url, err)
	}
	defer setup.Close()
	sch, err := setup.Channel()
	if err != nil {
		return fmt.Errorf("cannot open channel: %w", err)
	}
	if _, err := sch.QueueDeclare(queue, *persistent, false, false, false, nil); err != nil {
		return fmt.Errorf("cannot declare queue: %w", err)
	}
	defer func() { _, _ = sch.QueueDelete(queue, false, false, false) }()

	start := time.Now()
	ack := load.NewSeries(start, c.Warmup, c.Duration)
	e2e := load.NewSeries(start, c.Warmup, c.Duration)
	var confirmed, delivered, nacked atomic.Uint64
	mode := amqp091.Transient
	if *persistent {
		mode = amqp091.Persistent
	}

	// Consumers.
	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()
	var cwg sync.WaitGroup
	for i := 0; i < *consumers; i++ {
		conn, err := dial(*url)
		if err != nil {
			return fmt.Errorf("cannot connect consumer: %w", err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("cannot open consumer channel: %w", err)
		}
		if err := ch.Qos(*prefetch, 0, false); err != nil {
			return fmt.Errorf("cannot set prefetch: %w", err)
		}
		dels, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("cannot consume: %w", err)
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				select {
				case <-cctx.Done():
					return
				case d, ok := <-dels:
					if !ok {
						return
					}
					t := time.Now()
					if len(d.Body) >= 8 {
						e2e.Record(t, t.Sub(load.Stamped(d.Body)))
					}
					delivered.Add(1)
					_ = d.Ack(false)
				}
			}
		}()
	}

	// Producers: each paces itself at rate/producers.
	var before load.ProcSample
	var warm sync.Once
	pctx, pcancel := context.WithDeadline(context.Background(), start.Add(c.Duration))
	defer pcancel()
	var pwg sync.WaitGroup
	var published atomic.Uint64
	perr := make(chan error, *producers)
	for i := 0; i < *producers; i++ {
		conn, err := dial(*url)
		if err != nil {
			return fmt.Errorf("cannot connect producer: %w", err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("cannot open producer channel: %w", err)
		}
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("cannot enable confirms: %w", err)
		}
		confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, *window+1))
		rate := 0
		if c.Rate > 0 {
			rate = max(c.Rate / *producers, 1)
		}
		sent := make([]atomic.Int64, *window) // send times (Unix ns) by delivery tag modulo window
		slots := make(chan struct{}, *window)
		go func() { // confirms, until the channel closes
			for cf := range confirms {
				t := time.Now()
				if cf.Ack {
					ack.Record(t, t.Sub(time.Unix(0, sent[cf.DeliveryTag%uint64(*window)].Load())))
					confirmed.Add(1)
				} else {
					nacked.Add(1)
				}
				<-slots
			}
		}()
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			p := &load.Pacer{Rate: rate, Start: start}
			body := make([]byte, c.Size)
			var tag uint64
			for pctx.Err() == nil {
				n := p.Next(pctx)
				for j := 0; j < n && pctx.Err() == nil; j++ {
					select {
					case slots <- struct{}{}:
					case <-pctx.Done():
						return
					}
					if time.Since(start) >= c.Warmup {
						warm.Do(func() { before, _ = load.SampleProc(c.Pid) })
					}
					tag++
					t := time.Now()
					sent[tag%uint64(*window)].Store(t.UnixNano())
					load.Stamp(body, t)
					binary.BigEndian.PutUint64(body[8:], tag)
					if err := ch.PublishWithContext(context.Background(), "", queue, false, false,
						amqp091.Publishing{DeliveryMode: mode, Body: body}); err != nil {
						perr <- fmt.Errorf("cannot publish: %w", err)
						return
					}
					published.Add(1)
				}
			}
		}()
		defer ch.Close()
	}
	<-pctx.Done()
	pwg.Wait()
	after, _ := load.SampleProc(c.Pid)
	deadline := time.Now().Add(c.Drain)
	for (confirmed.Load()+nacked.Load() < published.Load() || delivered.Load() < confirmed.Load()) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	ccancel()
	cwg.Wait()
	select {
	case err := <-perr:
		res.Note = err.Error()
		res.Errors++
	default:
	}

	res.Summarize(c.Duration-c.Warmup, ack, e2e)
	res.Errors += nacked.Load()
	res.BrokerCost(before, after, res.Records)
	return res.Write(c.Out)
}
