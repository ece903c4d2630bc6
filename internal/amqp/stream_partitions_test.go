package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/kafka"
	"github.com/yardmq/yard/internal/murmur2"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

// startStreamBroker serves one topic manager over AMQP and Kafka, as `yard serve` does, and
// returns the AMQP URL and a franz-go client of the Kafka side.
func startStreamBroker(t *testing.T) (string, *kgo.Client) {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	must(t, err)
	streams, err := stream.Open(stream.Config{Layout: datadir.New(dir)}, cat)
	must(t, err)
	t.Cleanup(func() { streams.Close() })
	ks, err := kafka.NewServer(kafka.Config{Streams: streams})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- ks.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		must(t, ks.Shutdown(ctx))
		must(t, <-done)
	})
	_, url := startServer(t, Config{VHosts: newVHosts(vhost.Config{Streams: streams})})
	kc, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.RequiredAcks(kgo.AllISRAcks()))
	must(t, err)
	t.Cleanup(kc.Close)
	return url, kc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// consumeUntil consumes a stream with args until done says it has everything, acking as it
// goes, and cancels the consumer.
func consumeUntil(t *testing.T, ch *amqp091.Channel, queue string, args amqp091.Table, done func([]amqp091.Delivery) bool) []amqp091.Delivery {
	t.Helper()
	must(t, ch.Qos(7, 0, false))
	tag := fmt.Sprintf("c%d", time.Now().UnixNano())
	msgs, err := ch.Consume(queue, tag, false, false, false, false, args)
	must(t, err)
	var got []amqp091.Delivery
	for !done(got) {
		m := recv(t, msgs)
		must(t, m.Ack(false))
		got = append(got, m)
	}
	must(t, ch.Cancel(tag, false))
	return got
}

func wantRefused(t *testing.T, err error, text string) {
	t.Helper()
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != 406 || !strings.Contains(ae.Reason, text) {
		t.Fatalf("want 406 containing %q, got %v", text, err)
	}
}

func header[T any](t *testing.T, m amqp091.Delivery, key string) T {
	t.Helper()
	v, ok := m.Headers[key].(T)
	if !ok {
		t.Fatalf("delivery %q: header %s is %T %v", m.Body, key, m.Headers[key], m.Headers[key])
	}
	return v
}

// AMQP publishes with routing keys land where Kafka's partitioner puts the key, in order.
func TestStreamPartitionsAMQPToKafka(t *testing.T) {
	t.Parallel()
	url, kc := startStreamBroker(t)
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("bad", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-stream-partitions": "three"})
	wantRefused(t, err, "x-stream-partitions")
	ch = openCh(t, dial(t, url))
	_, err = ch.QueueDeclare("mp", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-stream-partitions": int32(3)})
	must(t, err)
	must(t, ch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil))
	must(t, ch.QueueBind("mp", "", "fan", false, nil))
	must(t, ch.Confirm(false))
	const keys, perKey = 8, 5
	publish := func(key, body string) {
		dc, err := ch.PublishWithDeferredConfirm("fan", key, false, false, amqp091.Publishing{Body: []byte(body)})
		must(t, err)
		if !dc.Wait() {
			t.Fatalf("publish %s nacked", body)
		}
	}
	for i := range perKey {
		for k := range keys {
			publish(fmt.Sprint("key-", k), fmt.Sprintf("key-%d/%d", k, i))
		}
	}
	for i := range 6 {
		publish("", fmt.Sprint("unkeyed-", i))
	}

	kc.AddConsumeTopics("mp")
	seen := map[string]int{}
	perPartition := map[int32]int{}
	unkeyed := map[int32]int{}
	for n := 0; n < keys*perKey+6; {
		fs := kc.PollFetches(testCtx(t))
		must(t, fs.Err0())
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if perPartition[r.Partition] != int(r.Offset) {
				t.Fatalf("partition %d: offset %d after %d records", r.Partition, r.Offset, perPartition[r.Partition])
			}
			perPartition[r.Partition]++
			if len(r.Key) == 0 {
				unkeyed[r.Partition]++
				return
			}
			if want := murmur2.Partition(r.Key, 3); r.Partition != want {
				t.Fatalf("key %s in partition %d, murmur2 says %d", r.Key, r.Partition, want)
			}
			if want := fmt.Sprintf("%s/%d", r.Key, seen[string(r.Key)]); string(r.Value) != want {
				t.Fatalf("key %s: got %q, want %q (per-key order)", r.Key, r.Value, want)
			}
			seen[string(r.Key)]++
		})
	}
	if len(perPartition) != 3 || unkeyed[0] != 2 || unkeyed[1] != 2 || unkeyed[2] != 2 {
		t.Fatalf("records per partition %v; unkeyed %v (want round-robin)", perPartition, unkeyed)
	}
}

func produceKeyed(t *testing.T, kc *kgo.Client, topic string, n, keys int) map[string][]*kgo.Record {
	t.Helper()
	byKey := map[string][]*kgo.Record{}
	for i := range n {
		key := fmt.Sprint("pkg-", i%keys)
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(fmt.Sprintf("%s/%d", key, len(byKey[key])))}
		must(t, kc.ProduceSync(testCtx(t), r).FirstErr())
		byKey[key] = append(byKey[key], r)
	}
	return byKey
}

// Kafka records in three partitions reach an AMQP consumer with their partition and offset,
// per-key order kept; offsets and partitions select where to read.
func TestStreamPartitionsKafkaToAMQP(t *testing.T) {
	t.Parallel()
	url, kc := startStreamBroker(t)
	adm := kadm.NewClient(kc)
	_, err := adm.CreateTopic(testCtx(t), 3, 1, nil, "kp")
	must(t, err)
	const n, keys = 60, 6
	byKey := produceKeyed(t, kc, "kp", n, keys)

	ch := openCh(t, dial(t, url))
	_, err = ch.QueueDeclare("kp", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-stream-partitions": int32(4)})
	wantRefused(t, err, "fewer than x-stream-partitions")
	ch = openCh(t, dial(t, url))
	_, err = ch.QueueDeclare("kp", true, false, false, false, amqp091.Table{"x-queue-type": "stream"})
	must(t, err)

	all := consumeUntil(t, ch, "kp", amqp091.Table{"x-stream-offset": "first"}, func(d []amqp091.Delivery) bool { return len(d) == n })
	next := map[string]int{}
	switches := 0
	for i, m := range all {
		key := m.RoutingKey
		want := byKey[key][next[key]]
		next[key]++
		part, off := header[int32](t, m, "x-stream-partition"), header[int64](t, m, "x-stream-offset")
		if string(m.Body) != string(want.Value) || part != want.Partition || off != want.Offset {
			t.Fatalf("delivery %d: %q partition %d offset %d, want %q at %d/%d", i, m.Body, part, off, want.Value, want.Partition, want.Offset)
		}
		if i > 0 && part != header[int32](t, all[i-1], "x-stream-partition") {
			switches++
		}
	}
	if switches < 2 {
		t.Fatalf("partitions were not interleaved (%d switches)", switches)
	}

	// A timestamp applies to each partition: an hour ago is the start of all three, so all n
	// records come (consumeUntil fails if they do not).
	consumeUntil(t, ch, "kp", amqp091.Table{"x-stream-offset": time.Now().Add(-time.Hour)}, func(d []amqp091.Delivery) bool { return len(d) == n })

	// "last" is per partition: the last record of each.
	last := consumeUntil(t, ch, "kp", amqp091.Table{"x-stream-offset": "last"}, func(d []amqp091.Delivery) bool { return len(d) == 3 })
	for _, m := range last {
		part := header[int32](t, m, "x-stream-partition")
		if end, _ := endOffsets(t, adm)[part]; header[int64](t, m, "x-stream-offset") != end-1 {
			t.Fatalf("last of partition %d is at %d, end %d", part, header[int64](t, m, "x-stream-offset"), end)
		}
	}

	// A numeric offset needs a partition on a multi-partition stream.
	_, err = ch.Consume("kp", "num", false, false, false, false, amqp091.Table{"x-stream-offset": int64(1)})
	wantRefused(t, err, "give x-stream-partition too")
	ch = openCh(t, dial(t, url))
	must(t, ch.Qos(1, 0, false))
	_, err = ch.Consume("kp", "num", false, false, false, false, amqp091.Table{"x-stream-offset": int64(1), "x-stream-partition": int32(3)})
	wantRefused(t, err, "invalid arg 'x-stream-partition'")
	ch = openCh(t, dial(t, url))
	p2 := endOffsets(t, adm)[2]
	got := consumeUntil(t, ch, "kp", amqp091.Table{"x-stream-offset": int64(1), "x-stream-partition": int32(2)},
		func(d []amqp091.Delivery) bool { return int64(len(d)) == p2-1 })
	for i, m := range got {
		if header[int32](t, m, "x-stream-partition") != 2 || header[int64](t, m, "x-stream-offset") != int64(i+1) {
			t.Fatalf("partition 2 from offset 1, delivery %d: %v", i, m.Headers)
		}
	}
}

func endOffsets(t *testing.T, adm *kadm.Client) map[int32]int64 {
	t.Helper()
	lo, err := adm.ListEndOffsets(testCtx(t), "kp")
	must(t, err)
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// Partitions added while a consumer runs are read by it.
func TestStreamPartitionsAddedLater(t *testing.T) {
	t.Parallel()
	url, kc := startStreamBroker(t)
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("grow", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-stream-partitions": int32(2)})
	must(t, err)
	must(t, ch.Qos(10, 0, false))
	msgs, err := ch.Consume("grow", "c", false, false, false, false, amqp091.Table{"x-stream-offset": "next"})
	must(t, err)
	adm := kadm.NewClient(kc)
	res, err := adm.CreatePartitions(testCtx(t), 1, "grow")
	must(t, err)
	must(t, res.Error())
	r := &kgo.Record{Topic: "grow", Partition: 2, Value: []byte("in the new partition")}
	pc, err := kgo.NewClient(kgo.SeedBrokers(kc.OptValue(kgo.SeedBrokers).([]string)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	must(t, err)
	defer pc.Close()
	must(t, pc.ProduceSync(testCtx(t), r).FirstErr())
	m := recv(t, msgs)
	if string(m.Body) != "in the new partition" || header[int32](t, m, "x-stream-partition") != 2 || header[int64](t, m, "x-stream-offset") != 0 {
		t.Fatalf("got %q %v", m.Body, m.Headers)
	}

	// A consumer pinned to a partition waits for that partition only.
	pinned, err := ch.Consume("grow", "pinned", false, false, false, false, amqp091.Table{"x-stream-partition": int32(1)})
	must(t, err)
	for _, r := range []*kgo.Record{{Topic: "grow", Partition: 0, Value: []byte("p0")}, {Topic: "grow", Partition: 1, Value: []byte("p1")}} {
		must(t, pc.ProduceSync(testCtx(t), r).FirstErr())
	}
	if m := recv(t, pinned); string(m.Body) != "p1" || header[int32](t, m, "x-stream-partition") != 1 {
		t.Fatalf("pinned consumer got %q %v", m.Body, m.Headers)
	}
}

// x-stream-filter is exact: a consumer gets only what it asked for, from AMQP publishers and
// Kafka producers alike, and no client-side filtering is needed.
func TestStreamFilter(t *testing.T) {
	t.Parallel()
	url, kc := startStreamBroker(t)
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("f", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-stream-partitions": int32(2)})
	must(t, err)
	must(t, ch.Confirm(false))
	publish := func(body, value string) {
		var h amqp091.Table
		if value != "" {
			h = amqp091.Table{"x-stream-filter-value": value}
		}
		dc, err := ch.PublishWithDeferredConfirm("", "f", false, false, amqp091.Publishing{Headers: h, Body: []byte(body)})
		must(t, err)
		if !dc.Wait() {
			t.Fatalf("publish %s nacked", body)
		}
	}
	produce := func(body, value string) {
		r := &kgo.Record{Topic: "f", Key: []byte("f"), Value: []byte(body)}
		if value != "" {
			r.Headers = []kgo.RecordHeader{{Key: "x-stream-filter-value", Value: []byte(value)}}
		}
		must(t, kc.ProduceSync(testCtx(t), r).FirstErr())
	}
	publish("a1", "emea")
	publish("a2", "amer")
	publish("a3", "")
	produce("k1", "emea")
	produce("k2", "apac")
	produce("k3", "")
	publish("a4", "emea")
	publish("end", "end") // every consumer below asks for "end" too, to know it has read all

	for _, c := range []struct {
		filter     any
		unfiltered any
		want       string
	}{
		{[]any{"emea", "end"}, nil, "a1 k1 a4 end"},
		{[]any{"apac", "amer", "end"}, false, "a2 k2 end"},
		{[]any{"emea", "end"}, true, "a1 a3 k1 k3 a4 end"},
		{"end", nil, "end"},
	} {
		args := amqp091.Table{"x-stream-offset": "first", "x-stream-filter": c.filter}
		if c.unfiltered != nil {
			args["x-stream-match-unfiltered"] = c.unfiltered
		}
		got := consumeUntil(t, ch, "f", args, func(d []amqp091.Delivery) bool {
			return len(d) > 0 && string(d[len(d)-1].Body) == "end"
		})
		var bodies []string
		for _, m := range got {
			bodies = append(bodies, string(m.Body))
			v, _ := m.Headers["x-stream-filter-value"].(string)
			if v == "" && c.unfiltered != true {
				t.Fatalf("filter %v delivered %q without a filter value", c.filter, m.Body)
			}
		}
		// Every record has the key "f" (the default exchange's routing key is the queue
		// name), so all are in one partition and arrive in publish order.
		if strings.Join(bodies, " ") != c.want {
			t.Fatalf("filter %v match-unfiltered %v: got %v, want %s", c.filter, c.unfiltered, bodies, c.want)
		}
	}

	for _, bad := range []amqp091.Table{
		{"x-stream-filter": int32(1)},
		{"x-stream-filter": []any{}},
		{"x-stream-filter": []any{"a", int32(2)}},
		{"x-stream-filter": "a", "x-stream-match-unfiltered": "yes"},
	} {
		ch = openCh(t, dial(t, url))
		must(t, ch.Qos(1, 0, false))
		_, err := ch.Consume("f", "", false, false, false, false, bad)
		wantRefused(t, err, "invalid arg 'x-stream-")
	}
}
