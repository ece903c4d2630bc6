package amqp

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestPublishConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	if len(q.Name) < 10 || q.Name[:8] != "amq.gen-" {
		t.Fatalf("server-named queue %q", q.Name)
	}
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 10))
	body := make([]byte, 300000) // spans several frames
	for i := range body {
		body[i] = byte(i)
	}
	must(t, ch.Publish("", q.Name, false, false, amqp091.Publishing{ContentType: "x/y", Headers: amqp091.Table{"h": int32(7)}, Body: body}))
	if cf := <-confirms; !cf.Ack || cf.DeliveryTag != 1 {
		t.Fatalf("confirm %+v", cf)
	}
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	must(t, err)
	d := recv(t, msgs)
	if string(d.Body) != string(body) || d.ContentType != "x/y" || d.Headers["h"] != int32(7) || d.Redelivered {
		t.Fatalf("delivery %+v", d.Headers)
	}
	must(t, d.Ack(false))
}

// TestSmallFrameMax negotiates the smallest frame_max the specification allows; large bodies
// are split into frames that fit it both ways (the client enforces it on what it receives).
func TestSmallFrameMax(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c, err := amqp091.DialConfig(url, amqp091.Config{FrameSize: 4096})
	must(t, err)
	defer c.Close()
	if c.Config.FrameSize != 4096 {
		t.Fatalf("negotiated frame_max %d", c.Config.FrameSize)
	}
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	body := make([]byte, 50000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	must(t, ch.Publish("", "q", false, false, amqp091.Publishing{Body: body}))
	d, ok, err := ch.Get("q", true)
	must(t, err)
	if !ok || string(d.Body) != string(body) {
		t.Fatal("body mangled across 4096-byte frames")
	}
}
