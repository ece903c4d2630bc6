package adversarial_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

const (
	kafkaMutationRounds = 4000
	kafkaMutationBudget = 30 * time.Second
	canaryRecords       = 600
)

// TestKafkaMutatedFrames replays mutated requests from real franz-go sessions (admin, produce
// with every codec, group consumption and commits) and checks that yard keeps serving fresh
// clients, keeps every acknowledged record readable, and logs no panic.
func TestKafkaMutatedFrames(t *testing.T) {
	t.Parallel()
	// Clients find brokers through Metadata: yard advertises the recorder, so that every
	// connection a client opens is recorded.
	rec := listenRecorder(t)
	host, port, _ := net.SplitHostPort(rec.addr())
	y := harness.Start(t, harness.WithArgs("--kafka-advertised-host", host, "--kafka-advertised-port", port))
	rec.serve(y.KafkaAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	recordKafkaSessions(ctx, t, rec.addr())
	var sessions [][][]byte
	for _, s := range rec.sessions() {
		if f := kafkaFrames(s); len(f) > 0 {
			sessions = append(sessions, f)
		}
	}
	produceCanary(ctx, t, rec.addr(), "canary")
	if len(sessions) == 0 {
		t.Fatal("no Kafka session was recorded")
	}

	n := runMutations(t, y, y.KafkaAddr, sessions, kafkaMutationRounds, kafkaMutationBudget, mutateKafka,
		func() error { return kafkaAlive(y.KafkaAddr) })
	t.Logf("%d mutated Kafka sessions replayed from %d recorded connections", n, len(sessions))
	checkCanary(ctx, t, rec.addr(), "canary")
	checkReadable(ctx, t, rec.addr(), "mut")
	checkNoPanic(t, y)
}

// checkReadable reads every partition of topic from its start to its end: whatever mutated
// produce requests yard accepted must not stop a consumer (a stored batch no client can read
// past poisons the partition).
func checkReadable(ctx context.Context, t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("end offsets of %s after the mutations: %v", topic, ends)
	readCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	next := map[int32]int64{}
	logged := 0
	for {
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			if next[o.Partition] < o.Offset {
				done = false
			}
		})
		if done {
			return
		}
		fs := cl.PollFetches(readCtx)
		if readCtx.Err() != nil {
			t.Fatalf("topic %s not readable to its end after the mutations: at %v, end %v", topic, next, ends)
		}
		fs.EachError(func(_ string, p int32, err error) {
			if logged++; logged <= 3 {
				t.Logf("fetch %s-%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { next[r.Partition] = r.Offset + 1 })
	}
}

// produceCanary writes canaryRecords records with acks=all; checkCanary reads them back.
func produceCanary(ctx context.Context, t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range canaryRecords {
		r := &kgo.Record{Key: []byte("k"), Value: []byte(fmt.Sprintf("canary-%05d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("cannot produce canary: %v", err)
		}
	}
}

func checkCanary(ctx context.Context, t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < canaryRecords {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("canary: %d of %d records read back: %v", got, canaryRecords, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("canary fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("canary-%05d", got); string(r.Value) != want {
				t.Fatalf("canary record at offset %d is %q, want %q", r.Offset, r.Value, want)
			}
			got++
		})
	}
}

// recordKafkaSessions runs a spread of real client work through the recorder.
func recordKafkaSessions(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ad := kadm.NewClient(adm)
	if _, err := ad.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "mut"); err != nil {
		t.Fatal(err)
	}
	_, _ = ad.DescribeTopicConfigs(ctx, "mut")
	_, _ = ad.ListEndOffsets(ctx, "mut")
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("mut"), kgo.ProducerBatchCompression(codec))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(strings.Repeat("v", 100+i)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
			cl.Produce(ctx, r, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("mut"), kgo.ConsumerGroup("mut-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 100; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("recording consumer read %d of 100", got)
		}
		got += fs.NumRecords()
	}
	_ = cons.CommitUncommittedOffsets(ctx)
	cons.Close()
	_, _ = ad.DescribeGroups(ctx, "mut-group")
	_, _ = ad.FetchOffsets(ctx, "mut-group")
	_, _ = ad.DeleteRecords(ctx, kadm.Offsets{"mut": {0: {Topic: "mut", Partition: 0, At: 1}}})
	adm.Close()
}

// kafkaAlive sends ApiVersions v0 on a fresh connection and waits for its answer.
func kafkaAlive(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := []byte{0, 0, 0, 10, 0, 18, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0xff, 0xff}
	if _, err := c.Write(req); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("no ApiVersions answer: %w", err)
	}
	if corr := binary.BigEndian.Uint32(hdr[4:]); corr != 0x0a0b0c0d {
		return fmt.Errorf("ApiVersions answered with correlation id %#x", corr)
	}
	return nil
}

// checkNoPanic fails the test if yard's log shows a panic or a runtime fatal error.
func checkNoPanic(t *testing.T, y *harness.Yard) {
	t.Helper()
	if y.Exited() {
		t.Fatal("yard has exited")
	}
	log := y.Log()
	for _, bad := range []string{"panic:", "fatal error:", "BUG:"} {
		if strings.Contains(log, bad) {
			t.Errorf("yard's log contains %q", bad)
		}
	}
}
