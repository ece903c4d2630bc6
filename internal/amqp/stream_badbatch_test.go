package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStreamConsumerCancelledOnUnreadableBatch: a stream consumer that meets a batch it cannot
// read (here: one that inflates past the bound its topic's max.message.bytes now sets) gets
// basic.cancel instead of a consumer that silently stops; the records before it are
// delivered.
func TestStreamConsumerCancelledOnUnreadableBatch(t *testing.T) {
	t.Parallel()
	url, kc := startStreamBroker(t)
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("big", true, false, false, false, amqp091.Table{"x-queue-type": "stream"})
	must(t, err)
	ctx := testCtx(t)
	pc, err := kgo.NewClient(kgo.SeedBrokers(kc.OptValue(kgo.SeedBrokers).([]string)...), kgo.DefaultProduceTopic("big"),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerBatchMaxBytes(64<<20), kgo.MaxBufferedBytes(128<<20))
	must(t, err)
	defer pc.Close()
	must(t, pc.ProduceSync(ctx, &kgo.Record{Value: []byte("small")}).FirstErr())
	// 12 MiB of zeros is a few hundred bytes of zstd: accepted under the default 1 MiB
	// max.message.bytes (it may inflate to 64 times that)...
	must(t, pc.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 12<<20)}).FirstErr())
	// ... and beyond what a reader may inflate once max.message.bytes is 1000 (8 MiB).
	v := "1000"
	res, err := kadm.NewClient(kc).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &v}}, "big")
	must(t, err)
	for _, r := range res {
		must(t, r.Err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	must(t, ch.Qos(10, 0, false))
	msgs, err := ch.Consume("big", "c", false, false, false, false, amqp091.Table{"x-stream-offset": "first"})
	must(t, err)
	select {
	case d := <-msgs:
		if string(d.Body) != "small" {
			t.Fatalf("first delivery %q", d.Body)
		}
	case <-ctx.Done():
		t.Fatal("no delivery")
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case tag := <-cancels:
			if tag != "c" {
				t.Fatalf("cancelled %q", tag)
			}
			return
		case d, ok := <-msgs:
			if ok {
				t.Fatalf("delivered %d bytes past the bound", len(d.Body))
			}
			msgs = nil // amqp091 closes the deliveries on basic.cancel, maybe before it notifies
		case <-timeout:
			t.Fatal("no basic.cancel for an unreadable batch")
		}
	}
}
