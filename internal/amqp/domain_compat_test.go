package amqp

// RabbitMQ 3.10 behaviours of the AMQP domain, as the clients' own suites (pika's acceptance
// tests, amqplib's) expect them: alternate exchanges, sender-selected distribution, direct
// reply-to consumed again, expiration validation, queue.bind defaults, declare-argument
// validation and equivalence, names with line feeds, x-expires renewal, fair delivery under a
// channel-wide prefetch.

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// declareErr declares a queue on a fresh channel and returns the error.
func declareErr(t *testing.T, c *amqp091.Connection, q string, args amqp091.Table) error {
	t.Helper()
	ch := openCh(t, c)
	defer ch.Close()
	_, err := ch.QueueDeclare(q, false, false, false, false, args)
	return err
}

// getOne basic.gets one message from q, failing if there is none.
func getOne(t *testing.T, ch *amqp091.Channel, q string) amqp091.Delivery {
	t.Helper()
	d, ok, err := ch.Get(q, true)
	must(t, err)
	if !ok {
		t.Fatalf("queue %s is empty", q)
	}
	return d
}

func wantEmpty(t *testing.T, ch *amqp091.Channel, q string) {
	t.Helper()
	if d, ok, err := ch.Get(q, true); err != nil || ok {
		t.Fatalf("queue %s: got %q, %v; want it empty", q, d.Body, err)
	}
}

// TestAlternateExchange: a message its exchange cannot route goes to the exchange's
// alternate exchange (and on through the AE's own AE), not dropped; it comes back to a
// mandatory publisher only if no AE routes it; a cycle of AEs ends.
func TestAlternateExchange(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	must(t, ch.ExchangeDeclare("ae2", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeDeclare("ae1", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae2"}))
	must(t, ch.ExchangeDeclare("main", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae1"}))
	for _, q := range []string{"routed", "unrouted"} {
		_, err := ch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
	}
	must(t, ch.QueueBind("routed", "k", "main", false, nil))
	must(t, ch.QueueBind("unrouted", "", "ae2", false, nil))
	must(t, ch.ExchangeDeclare("loop1", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "loop2"}))
	must(t, ch.ExchangeDeclare("loop2", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "loop1"}))

	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	must(t, ch.Publish("main", "k", true, false, amqp091.Publishing{Body: []byte("bound")}))
	must(t, ch.Publish("main", "nobody", true, false, amqp091.Publishing{Body: []byte("via ae")}))
	must(t, ch.Publish("loop1", "nobody", true, false, amqp091.Publishing{Body: []byte("lost")}))
	select {
	case r := <-returns:
		if string(r.Body) != "lost" || r.ReplyCode != 312 {
			t.Fatalf("returned %q (%d), want only the message no AE could route", r.Body, r.ReplyCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the message an AE cycle could not route was not returned")
	}
	if d := getOne(t, ch, "routed"); string(d.Body) != "bound" {
		t.Fatalf("routed got %q", d.Body)
	}
	if d := getOne(t, ch, "unrouted"); string(d.Body) != "via ae" {
		t.Fatalf("unrouted got %q", d.Body)
	}
	wantEmpty(t, ch, "routed")
	wantEmpty(t, ch, "unrouted")

	// Only alternate-exchange takes part in an exchange's equivalence, and it must be a string.
	must(t, ch.ExchangeDeclare("main", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae1", "x-other": int32(1)}))
	err := ch.ExchangeDeclare("main", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": "ae2"})
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'main' in vhost '/': received the value 'ae2' of type 'longstr' but current is the value 'ae1' of type 'longstr'")
	ch = openCh(t, c)
	err = ch.ExchangeDeclare("bad-ae", "direct", false, false, false, false, amqp091.Table{"alternate-exchange": int32(1)})
	wantCode(t, err, 406, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange 'bad-ae' in vhost '/'")
}

// TestSenderSelectedDistribution: the CC and BCC headers' routing keys are routed to as well
// as the publish's own; BCC is removed before delivery, CC is not.
func TestSenderSelectedDistribution(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	for _, q := range []string{"to", "cc", "bcc", "other"} {
		_, err := ch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
		must(t, ch.QueueBind(q, "key."+q, "amq.topic", false, nil))
	}
	must(t, ch.Publish("amq.topic", "key.to", false, false, amqp091.Publishing{Body: []byte("m"),
		Headers: amqp091.Table{"CC": []any{"key.cc"}, "BCC": []any{"key.bcc", "key.to"}}}))
	for _, q := range []string{"to", "cc", "bcc"} {
		d := getOne(t, ch, q)
		if _, ok := d.Headers["BCC"]; ok {
			t.Fatalf("%s: BCC delivered: %v", q, d.Headers)
		}
		if cc, _ := d.Headers["CC"].([]any); len(cc) != 1 || cc[0] != "key.cc" {
			t.Fatalf("%s: CC %v", q, d.Headers["CC"])
		}
		wantEmpty(t, ch, q)
	}
	wantEmpty(t, ch, "other")
	// Through the default exchange, CC names queues.
	must(t, ch.Publish("", "to", false, false, amqp091.Publishing{Body: []byte("d"), Headers: amqp091.Table{"CC": []any{"other"}}}))
	getOne(t, ch, "to")
	getOne(t, ch, "other")

	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.Publish("amq.topic", "key.to", false, false, amqp091.Publishing{Headers: amqp091.Table{"CC": int32(1)}}))
	wantChannelClosed(t, ch, closed, "to", `PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",signedint}`)

	// A single routing key as a plain string is refused too: only an array is taken.
	ch = openCh(t, c)
	closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.Publish("amq.topic", "key.to", false, false, amqp091.Publishing{Headers: amqp091.Table{"BCC": "key.cc"}}))
	wantChannelClosed(t, ch, closed, "to", `PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"BCC",longstr}`)
}

// TestDirectReplyToConsumeAgain: consuming amq.rabbitmq.reply-to, cancelling and consuming
// it again on the same channel works, and replies reach the new consumer.
func TestDirectReplyToConsumeAgain(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	requester, responder := openCh(t, c), openCh(t, c)
	_, err := responder.QueueDeclare("rpc-again", false, false, false, false, nil)
	must(t, err)
	for round := range 3 {
		tag := fmt.Sprintf("reply-%d", round)
		replies, err := requester.Consume("amq.rabbitmq.reply-to", tag, true, false, false, false, nil)
		must(t, err)
		must(t, requester.Publish("", "rpc-again", false, false, amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("ping")}))
		req := getOne(t, responder, "rpc-again")
		must(t, responder.Publish("", req.ReplyTo, false, false, amqp091.Publishing{Body: []byte("pong")}))
		if d := recv(t, replies); string(d.Body) != "pong" {
			t.Fatalf("round %d: reply %q", round, d.Body)
		}
		must(t, requester.Cancel(tag, false))
	}
}

// TestExpirationValidated: a per-message expiration that is not a non-negative integer
// string closes the channel with 406 and RabbitMQ's text.
func TestExpirationValidated(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	_, err := ch.QueueDeclare("exp", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Publish("", "exp", false, false, amqp091.Publishing{Expiration: "60000", Body: []byte("ok")}))
	getOne(t, ch, "exp")
	for _, tc := range []struct{ exp, text string }{
		{"abc", "invalid expiration 'abc': no_integer"},
		{"-1", "invalid expiration '-1': {value_negative,-1}"},
		{"10s", `invalid expiration '10s': {leftover_string,"s"}`},
		{"1.5", `invalid expiration '1.5': {leftover_string,".5"}`},
		{"315360000001", "invalid expiration '315360000001': {value_too_large,315360000001}"},
	} {
		ch := openCh(t, c)
		closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
		must(t, ch.Publish("", "exp", false, false, amqp091.Publishing{Expiration: tc.exp}))
		wantChannelClosed(t, ch, closed, "exp", "PRECONDITION_FAILED - "+tc.text)
	}
	wantEmpty(t, openCh(t, c), "exp")
}

// TestQueueBindDefaults: queue.bind with no queue binds the channel's last declared queue,
// with its name as the routing key when none is given; queue.unbind of a queue, exchange or
// binding that does not exist is unbind-ok (RabbitMQ 3.x).
func TestQueueBindDefaults(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	_, err := ch.QueueDeclare("last", false, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind("", "", "amq.direct", false, nil))
	must(t, ch.Publish("amq.direct", "last", false, false, amqp091.Publishing{Body: []byte("by name")}))
	if d := getOne(t, ch, "last"); string(d.Body) != "by name" {
		t.Fatalf("got %q", d.Body)
	}
	must(t, ch.QueueUnbind("", "", "amq.direct", nil))
	must(t, ch.QueueUnbind("last", "never-bound", "amq.direct", nil))
	must(t, ch.QueueUnbind("no-such-queue", "k", "amq.direct", nil))
	must(t, ch.QueueUnbind("last", "k", "no-such-exchange", nil))
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	must(t, ch.Publish("amq.direct", "last", true, false, amqp091.Publishing{Body: []byte("unbound")}))
	select {
	case <-returns:
	case <-time.After(10 * time.Second):
		t.Fatal("the binding was not removed")
	}
	ch2 := openCh(t, c)
	wantCode(t, ch2.QueueBind("", "", "amq.direct", false, nil), 404, "NOT_FOUND - no previously declared queue")
}

// TestDeclareArgumentsValidated: queue arguments are checked as RabbitMQ checks them, with
// its wording; so are headers bindings' x-match and consumers' x-priority.
func TestDeclareArgumentsValidated(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	for _, tc := range []struct {
		args amqp091.Table
		want string // after "invalid arg 'x-...' for queue 'q' in vhost '/': "
	}{
		{amqp091.Table{"x-max-length": "10"}, `x-max-length' for queue 'q' in vhost '/': "expected integer, got longstr"`},
		{amqp091.Table{"x-max-length": 10.0}, `x-max-length' for queue 'q' in vhost '/': "expected integer, got double"`},
		{amqp091.Table{"x-max-length-bytes": int32(-1)}, `x-max-length-bytes' for queue 'q' in vhost '/': {value_negative,-1}`},
		{amqp091.Table{"x-expires": int32(0)}, `x-expires' for queue 'q' in vhost '/': {value_zero,0}`},
		{amqp091.Table{"x-message-ttl": int64(-5)}, `x-message-ttl' for queue 'q' in vhost '/': {value_negative,-5}`},
		{amqp091.Table{"x-max-priority": int32(256)}, `x-max-priority' for queue 'q' in vhost '/': {max_value_exceeded,256}`},
		{amqp091.Table{"x-overflow": "drop-tail"}, `x-overflow' for queue 'q' in vhost '/': invalid_overflow`},
		{amqp091.Table{"x-queue-mode": "fast"}, `x-queue-mode' for queue 'q' in vhost '/': "unsupported queue mode 'fast'"`},
		{amqp091.Table{"x-dead-letter-routing-key": "rk"}, `x-dead-letter-routing-key' for queue 'q' in vhost '/': routing_key_but_no_dlx_defined`},
		{amqp091.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": int32(1)}, `x-dead-letter-routing-key' for queue 'q' in vhost '/': {unacceptable_type,signedint}`},
		{amqp091.Table{"x-single-active-consumer": "yes"}, `x-single-active-consumer' for queue 'q' in vhost '/': {unacceptable_type,longstr}`},
		{amqp091.Table{"x-queue-type": "fifo"}, `x-queue-type' for queue 'q' in vhost '/': "unsupported queue type 'fifo'"`},
	} {
		wantCode(t, declareErr(t, c, "q", tc.args), 406, "PRECONDITION_FAILED - invalid arg '"+tc.want)
	}
	wantCode(t, declareErr(t, c, "q", amqp091.Table{"x-dead-letter-exchange": int32(1)}), 406,
		"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'")
	must(t, declareErr(t, c, "q", amqp091.Table{"x-max-length": int32(10), "x-whatever": "kept"}))

	// Equivalence: type matters (10 is not 10.0), unknown arguments do not take part.
	must(t, declareErr(t, c, "q", amqp091.Table{"x-max-length": int64(10), "x-other": int32(1)}))
	wantCode(t, declareErr(t, c, "q", amqp091.Table{"x-max-length": 10.0}), 406,
		"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the value '10.0' of type 'double' but current is the value '10' of type 'signedint'")
	wantCode(t, declareErr(t, c, "q", nil), 406,
		"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current is the value '10' of type 'signedint'")

	ch := openCh(t, c)
	must(t, ch.ExchangeDeclare("hdrs", "headers", false, false, false, false, nil))
	err := ch.QueueBind("q", "", "hdrs", false, amqp091.Table{"x-match": "some"})
	wantCode(t, err, 406, `PRECONDITION_FAILED - Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x`)
	ch = openCh(t, c)
	_, err = ch.Consume("q", "", false, false, false, false, amqp091.Table{"x-priority": "high"})
	wantCode(t, err, 406, `PRECONDITION_FAILED - invalid arg 'x-priority' for queue 'q' in vhost '/': "expected integer, got longstr"`)
}

// TestNamesLoseLineFeeds: \n and \r are removed from queue and exchange names.
func TestNamesLoseLineFeeds(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	q, err := ch.QueueDeclare("line\r\nfeed", false, false, false, false, nil)
	must(t, err)
	if q.Name != "linefeed" {
		t.Fatalf("declared %q", q.Name)
	}
	must(t, ch.ExchangeDeclare("ex\nch", "fanout", false, false, false, false, nil))
	must(t, ch.QueueBind("linefeed\n", "", "exch", false, nil))
	must(t, ch.Publish("exch", "", false, false, amqp091.Publishing{Body: []byte("m")}))
	getOne(t, ch, "line\nfeed")
}

// TestPassiveDeclareRenewsExpires: a passive declare is a use of the queue: x-expires counts
// from it.
func TestPassiveDeclareRenewsExpires(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	const expires = 1500 * time.Millisecond
	_, err := ch.QueueDeclare("lease", false, false, false, false, amqp091.Table{"x-expires": int32(expires / time.Millisecond)})
	must(t, err)
	// Renew for more than two leases; a gap of a whole lease between renewals would be needed
	// for the queue to expire.
	for end := time.Now().Add(2*expires + expires/2); time.Now().Before(end); time.Sleep(expires / 10) {
		if _, err := ch.QueueDeclarePassive("lease", false, false, false, false, nil); err != nil {
			t.Fatalf("the queue expired although passively declared every %v: %v", expires/10, err)
		}
	}
}

// TestFairDeliveryGlobalPrefetch: under basic.qos global=true, a channel consuming from
// several queues gets messages from each in turn; none starves the others.
func TestFairDeliveryGlobalPrefetch(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	queues := []string{"fair-a", "fair-b", "fair-c"}
	for _, q := range queues {
		_, err := ch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
		for range 30 {
			must(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: []byte(q)}))
		}
	}
	must(t, ch.Qos(2, 0, true))
	deliveries := make(chan amqp091.Delivery, 100)
	for _, q := range queues {
		ds, err := ch.Consume(q, "", false, false, false, false, nil)
		must(t, err)
		go func() {
			for d := range ds {
				deliveries <- d
			}
		}()
	}
	got := map[string]int{}
	for range 30 {
		d := recv(t, deliveries)
		got[string(d.Body)]++
		must(t, d.Ack(false))
	}
	for _, q := range queues {
		if got[q] < 5 {
			t.Fatalf("deliveries per queue %v: %s starved", got, q)
		}
	}
}
