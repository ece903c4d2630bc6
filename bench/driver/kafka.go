package main

import (
	"github.com/yardmq/yard/bench/internal/load"

	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func runKafka(args []string) error {
	var c load.Common
	fs := flag.NewFlagSet("kafka", flag.ExitOnError)
	c.Flags(fs)
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap addresses, comma-separated")
	topic := fs.String("topic", "", "topic, created with -partitions and deleted afterwards (default: one per run)")
	partitions := fs.Int("partitions", 6, "partitions of the topic")
	replication := fs.Int("replication", 1, "replication factor of the topic (-1: the broker's default)")
	acks := fs.String("acks", "all", "all or 1")
	codec := fs.String("compression", "none", "none or lz4")
	consume := fs.Bool("consume", true, "also consume and measure end-to-end latency")
	_ = fs.Parse(args)
	if err := c.Check(); err != nil {
		return err
	}
	if *topic == "" {
		*topic = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	res := &load.Result{Broker: c.Broker, Protocol: "kafka", Tool: "franz-go", Workload: c.Workload, Rate: c.Rate,
		Acks: *acks, Codec: *codec, Producers: 1, Size: c.Size, Started: load.Now()}
	if *consume {
		res.Consumers = 1
	}

	adm, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer adm.Close()
	ad := kadm.NewClient(adm)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cr, err := ad.CreateTopic(ctx, int32(*partitions), int16(*replication), nil, *topic)
	cancel()
	if err == nil {
		err = cr.Err
	}
	if err != nil {
		return fmt.Errorf("cannot create topic %s: %w", *topic, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = ad.DeleteTopics(ctx, *topic)
	}()

	popts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.DefaultProduceTopic(*topic)}
	switch *acks {
	case "all", "-1":
		popts = append(popts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		popts = append(popts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		return fmt.Errorf("cannot run: -acks %q is neither all nor 1", *acks)
	}
	switch *codec {
	case "none":
		popts = append(popts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "lz4":
		popts = append(popts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	default:
		return fmt.Errorf("cannot run: -compression %q is neither none nor lz4", *codec)
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		return fmt.Errorf("cannot create producer: %w", err)
	}
	defer prod.Close()

	start := time.Now()
	ack := load.NewSeries(start, c.Warmup, c.Duration)
	e2e := load.NewSeries(start, c.Warmup, c.Duration)
	var consumed atomic.Uint64
	var produced atomic.Uint64
	var errs atomic.Uint64
	var lastErr atomic.Value

	cctx, ccancel := context.WithCancel(context.Background())
	defer ccancel()
	var cwg sync.WaitGroup
	if *consume {
		cons, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ConsumeTopics(*topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return fmt.Errorf("cannot create consumer: %w", err)
		}
		defer cons.Close()
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for cctx.Err() == nil {
				fetches := cons.PollFetches(cctx)
				t := time.Now()
				fetches.EachRecord(func(r *kgo.Record) {
					if len(r.Value) >= 8 {
						e2e.Record(t, t.Sub(load.Stamped(r.Value)))
					}
					consumed.Add(1)
				})
			}
		}()
	}

	pool := sync.Pool{New: func() any { b := make([]byte, c.Size); return &b }}
	var before load.ProcSample
	var warm sync.Once
	pctx, pcancel := context.WithDeadline(context.Background(), start.Add(c.Duration))
	defer pcancel()
	p := &load.Pacer{Rate: c.Rate, Start: start}
	var seq uint64
	for pctx.Err() == nil {
		n := p.Next(pctx)
		for i := 0; i < n && pctx.Err() == nil; i++ {
			if time.Since(start) >= c.Warmup {
				warm.Do(func() { before, _ = load.SampleProc(c.Pid) })
			}
			bp := pool.Get().(*[]byte)
			b := *bp
			seq++
			binary.BigEndian.PutUint64(b[8:], seq)
			load.Stamp(b, time.Now())
			prod.Produce(pctx, &kgo.Record{Value: b}, func(r *kgo.Record, err error) {
				t := time.Now()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						errs.Add(1)
						lastErr.Store(err.Error())
					}
				} else {
					ack.Record(t, t.Sub(load.Stamped(r.Value)))
					produced.Add(1)
				}
				pool.Put(bp)
			})
		}
	}
	after, _ := load.SampleProc(c.Pid)
	fctx, fcancel := context.WithTimeout(context.Background(), c.Drain)
	_ = prod.Flush(fctx)
	fcancel()
	if *consume {
		deadline := time.Now().Add(c.Drain)
		for consumed.Load() < produced.Load() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		ccancel()
		cwg.Wait()
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

// runTopic creates or deletes a topic, for the Java tools' runs: quicker than a JVM.
func runTopic(args []string) error {
	fs := flag.NewFlagSet("topic", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap addresses, comma-separated")
	create := fs.String("create", "", "topic to create")
	del := fs.String("delete", "", "topic to delete")
	partitions := fs.Int("partitions", 6, "partitions of a created topic")
	replication := fs.Int("replication", 1, "replication factor of a created topic (-1: the broker's default)")
	_ = fs.Parse(args)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...))
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	ad := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *create != "" {
		r, err := ad.CreateTopic(ctx, int32(*partitions), int16(*replication), nil, *create)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			return fmt.Errorf("cannot create topic %s: %w", *create, err)
		}
	}
	if *del != "" {
		if _, err := ad.DeleteTopics(ctx, *del); err != nil {
			return fmt.Errorf("cannot delete topic %s: %w", *del, err)
		}
	}
	return nil
}
