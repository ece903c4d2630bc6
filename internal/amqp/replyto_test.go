package amqp

import (
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestDirectReplyTo(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	requester := openCh(t, dial(t, url))
	responder := openCh(t, dial(t, url))
	declareQ(t, responder, "rpc")
	requests, err := responder.Consume("rpc", "", true, false, false, false, nil)
	must(t, err)
	replies, err := requester.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	must(t, err)
	must(t, requester.Publish("", "rpc", false, false, amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("ping")}))
	req := recv(t, requests)
	if !strings.HasPrefix(req.ReplyTo, "amq.rabbitmq.reply-to.") {
		t.Fatalf("reply_to %q not rewritten", req.ReplyTo)
	}
	must(t, responder.Publish("", req.ReplyTo, false, false, amqp091.Publishing{Body: []byte("pong")}))
	if d := recv(t, replies); string(d.Body) != "pong" {
		t.Fatalf("reply %q", d.Body)
	}
	// Without the pseudo-consumer, reply_to cannot be resolved.
	other := openCh(t, dial(t, url))
	closed := other.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, other.Publish("", "rpc", false, false, amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to"}))
	wantCode(t, <-closed, 406, "PRECONDITION_FAILED - fast reply consumer does not exist")
}

func TestEmptyQueueNameMeansLastDeclared(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	_, err := ch.Consume("", "", true, false, false, false, nil)
	wantCode(t, err, 404, "NOT_FOUND - no previously declared queue")
	ch = openCh(t, dial(t, url))
	declareQ(t, ch, "named")
	must(t, ch.QueueBind("", "k", "amq.direct", false, nil))
	must(t, ch.Publish("amq.direct", "k", false, false, amqp091.Publishing{Body: []byte("via-last")}))
	msgs, err := ch.Consume("", "", true, false, false, false, nil)
	must(t, err)
	if d := recv(t, msgs); string(d.Body) != "via-last" {
		t.Fatalf("got %q", d.Body)
	}
}
