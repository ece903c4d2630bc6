package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

func startStreamServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	must(t, err)
	streams, err := stream.Open(stream.Config{Layout: datadir.New(dir)}, cat)
	must(t, err)
	_, url := startServer(t, Config{VHosts: newVHosts(vhost.Config{Streams: streams})})
	t.Cleanup(func() { streams.Close() }) // after the server's shutdown (cleanups run LIFO)
	return url
}

func TestStreamQueueSemantics(t *testing.T) {
	t.Parallel()
	url := startStreamServer(t)
	ch := openCh(t, dial(t, url))
	args := amqp091.Table{"x-queue-type": "stream"}
	_, err := ch.QueueDeclare("s", false, false, false, false, args)
	wantCode(t, err, 406, "PRECONDITION_FAILED - invalid property 'non-durable' for queue 's' in vhost '/'")
	ch = openCh(t, dial(t, url))
	_, err = ch.QueueDeclare("s", true, false, false, false, args)
	must(t, err)
	must(t, ch.Confirm(false))
	for _, b := range []string{"a", "b", "c"} {
		dc, err := ch.PublishWithDeferredConfirm("", "s", false, false, amqp091.Publishing{Body: []byte(b)})
		must(t, err)
		if !dc.Wait() {
			t.Fatal("publish to a stream nacked")
		}
	}
	_, _, err = ch.Get("s", false)
	wantCode(t, err, 540, "")

	ch = openCh(t, dial(t, url))
	cancelled := ch.NotifyCancel(make(chan string, 1))
	must(t, ch.Qos(2, 0, false))
	msgs, err := ch.Consume("s", "c", false, false, false, false, amqp091.Table{"x-stream-offset": int64(1)})
	must(t, err)
	for i, want := range []string{"b", "c"} {
		m := recv(t, msgs)
		if string(m.Body) != want || m.Headers["x-stream-offset"] != int64(i+1) {
			t.Fatalf("delivery %d: %q %v", i, m.Body, m.Headers)
		}
		must(t, m.Ack(false))
	}
	other := openCh(t, dial(t, url))
	if _, err := other.QueueDelete("s", false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancelled:
		if tag != "c" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream consumer not cancelled when its queue was deleted")
	}
}

func TestStreamArgumentsBecomeTopicConfigs(t *testing.T) {
	t.Parallel()
	url := startStreamServer(t)
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("aged", true, false, false, false, amqp091.Table{"x-queue-type": "stream", "x-max-age": "forever"})
	wantCode(t, err, 406, "")
}
