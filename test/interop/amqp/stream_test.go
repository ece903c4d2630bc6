package amqp_test

// Streams across protocols (issue 6): an AMQP stream queue is the Kafka topic of the same name.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

func streamConsume(t *testing.T, ch *amqp091.Channel, queue string, offset any, n int) []amqp091.Delivery {
	t.Helper()
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprint("c-", offset)
	msgs, err := ch.Consume(queue, tag, false, false, false, false, amqp091.Table{"x-stream-offset": offset})
	if err != nil {
		t.Fatal(err)
	}
	var out []amqp091.Delivery
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("consumer closed after %d of %d deliveries", len(out), n)
			}
			out = append(out, m)
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatalf("got %d of %d deliveries from offset %v", len(out), n, offset)
		}
	}
	if err := ch.Cancel(tag, false); err != nil {
		t.Fatal(err)
	}
	return out
}

func offsetOf(t *testing.T, m amqp091.Delivery) int64 {
	t.Helper()
	off, ok := m.Headers["x-stream-offset"].(int64)
	if !ok {
		t.Fatalf("delivery without x-stream-offset: %v", m.Headers)
	}
	return off
}

func TestStreamAcrossProtocols(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	args := amqp091.Table{"x-queue-type": "stream"}
	if _, err := ch.QueueDeclare("events", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		dc, err := ch.PublishWithDeferredConfirm("", "events", false, false, amqp091.Publishing{
			Headers: amqp091.Table{"origin": "amqp"}, ContentType: "text/plain", Body: []byte(fmt.Sprint("amqp-", i))})
		if err != nil || !dc.Wait() {
			t.Fatalf("publish %d: %v", i, err)
		}
	}

	// Kafka reads what AMQP wrote.
	kc, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < 10 {
		fs := kc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, fs.Records()...)
	}
	for i, r := range recs {
		origin := ""
		for _, h := range r.Headers {
			if h.Key == "origin" {
				origin = string(h.Value)
			}
		}
		if string(r.Value) != fmt.Sprint("amqp-", i) || string(r.Key) != "events" || origin != "amqp" || r.Offset != int64(i) {
			t.Fatalf("Kafka record %d: key %q value %q origin %q offset %d", i, r.Key, r.Value, origin, r.Offset)
		}
	}

	// AMQP reads what Kafka wrote.
	for i := range 5 {
		r := &kgo.Record{Topic: "events", Key: []byte("k"), Value: []byte(fmt.Sprint("kafka-", i)), Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("kafka")}}}
		if err := kc.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	all := streamConsume(t, ch, "events", "first", 15)
	for i, m := range all {
		want, origin := fmt.Sprint("amqp-", i), "amqp"
		if i >= 10 {
			want, origin = fmt.Sprint("kafka-", i-10), "kafka"
		}
		if string(m.Body) != want || m.Headers["origin"] != origin || offsetOf(t, m) != int64(i) {
			t.Fatalf("delivery %d: body %q headers %v", i, m.Body, m.Headers)
		}
		if i < 10 && m.ContentType != "text/plain" {
			t.Fatalf("delivery %d lost its AMQP properties: %+v", i, m)
		}
	}
	// Acks do not delete: a second reader sees the same log; offsets select where to start.
	if again := streamConsume(t, ch, "events", "first", 15); offsetOf(t, again[14]) != 14 {
		t.Fatalf("second read from first ends at %d", offsetOf(t, again[14]))
	}
	if m := streamConsume(t, ch, "events", int64(12), 3); offsetOf(t, m[0]) != 12 {
		t.Fatalf("x-stream-offset 12 started at %d", offsetOf(t, m[0]))
	}
	if m := streamConsume(t, ch, "events", "last", 1); offsetOf(t, m[0]) != 14 {
		t.Fatalf("x-stream-offset last started at %d", offsetOf(t, m[0]))
	}
	if m := streamConsume(t, ch, "events", time.Now().Add(-time.Hour), 1); offsetOf(t, m[0]) != 0 {
		t.Fatalf("x-stream-offset an hour ago started at %d", offsetOf(t, m[0]))
	}
	// "next": only what is written after the consumer starts.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.Qos(10, 0, false))
	next, err := ch.Consume("events", "next", false, false, false, false, amqp091.Table{"x-stream-offset": "next"})
	must(err)
	must(kc.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("later")}).FirstErr())
	select {
	case m := <-next:
		if string(m.Body) != "later" || offsetOf(t, m) != 15 {
			t.Fatalf("next consumer got %q at %d", m.Body, offsetOf(t, m))
		}
		must(m.Ack(false))
	case <-time.After(30 * time.Second):
		t.Fatal("next consumer got nothing")
	}
	must(ch.Cancel("next", false))

	// Without prefetch a stream consumer is refused, as in RabbitMQ.
	_, ch2 := dialY(t, y)
	_, err = ch2.Consume("events", "", false, false, false, false, nil)
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != 406 {
		t.Fatalf("consume without prefetch: %v, want 406", err)
	}

	// The stream queue and its data survive kill -9.
	y.Kill()
	y.Restart()
	_, ch = dialY(t, y)
	if _, err := ch.QueueDeclarePassive("events", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if m := streamConsume(t, ch, "events", "first", 16); string(m[15].Body) != "later" {
		t.Fatalf("after restart the stream ends with %q", m[15].Body)
	}
}
