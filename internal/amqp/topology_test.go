package amqp

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

func TestExchangeDeclareAndErrors(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	must(t, ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil))
	must(t, ch.ExchangeDeclare("orders", "topic", true, false, false, false, nil)) // equivalent: fine
	must(t, ch.ExchangeDeclarePassive("orders", "topic", true, false, false, false, nil))
	must(t, ch.ExchangeDeclarePassive("amq.match", "headers", true, false, false, false, nil))

	err := ch.ExchangeDeclare("orders", "fanout", true, false, false, false, nil)
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'orders' in vhost '/': received 'fanout' but current is 'topic'")
	ch = openCh(t, c)
	wantCode(t, ch.ExchangeDeclarePassive("nope", "direct", false, false, false, false, nil), 404, "NOT_FOUND - no exchange 'nope' in vhost '/'")
	ch = openCh(t, c)
	wantCode(t, ch.ExchangeDeclare("amq.mine", "direct", false, false, false, false, nil), 403, "ACCESS_REFUSED - exchange name 'amq.mine' contains reserved prefix 'amq.*'")
	ch = openCh(t, c)
	must(t, ch.ExchangeDeclare("src", "fanout", false, false, false, false, nil))
	must(t, ch.ExchangeBind("orders", "", "src", false, nil))
	wantCode(t, ch.ExchangeDelete("src", true, false), 406, "PRECONDITION_FAILED - exchange 'src' in vhost '/' in use")
	ch = openCh(t, c)
	wantCode(t, ch.ExchangeBind("orders", "", "missing", false, nil), 404, "NOT_FOUND - no exchange 'missing' in vhost '/'")
	ch = openCh(t, c)
	must(t, ch.ExchangeUnbind("orders", "", "src", false, nil))
	must(t, ch.ExchangeDelete("src", true, false))
	must(t, ch.ExchangeDelete("src", false, false)) // already gone: a no-op, as in RabbitMQ
}

func TestPublishToInternalOrMissingExchange(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.ExchangeDeclare("inner", "direct", false, false, true, false, nil))
	must(t, ch.Publish("inner", "k", false, false, amqp091.Publishing{}))
	wantCode(t, <-closed, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'inner' in vhost '/'")
	ch = openCh(t, c)
	closed = ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.Publish("ghost", "k", false, false, amqp091.Publishing{}))
	wantCode(t, <-closed, 404, "NOT_FOUND - no exchange 'ghost' in vhost '/'")
	// The connection survives channel errors.
	ch = openCh(t, c)
	_, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
}

func TestRoutingThroughEveryExchangeType(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declare := func(name string) {
		_, err := ch.QueueDeclare(name, false, false, false, false, nil)
		must(t, err)
	}
	for _, q := range []string{"qd", "qf1", "qf2", "qt", "qh", "qe"} {
		declare(q)
	}
	must(t, ch.QueueBind("qd", "route.eu", "amq.direct", false, nil))
	must(t, ch.QueueBind("qf1", "", "amq.fanout", false, nil))
	must(t, ch.QueueBind("qf2", "ignored", "amq.fanout", false, nil))
	must(t, ch.QueueBind("qt", "*.eu.#", "amq.topic", false, nil))
	must(t, ch.QueueBind("qh", "", "amq.headers", false, amqp091.Table{"x-match": "any", "zone": "north", "kind": "van"}))
	must(t, ch.ExchangeDeclare("e2e", "fanout", false, true, false, false, nil))
	must(t, ch.ExchangeBind("e2e", "#", "amq.topic", false, nil))
	must(t, ch.QueueBind("qe", "", "e2e", false, nil))

	pub := func(ex, key string, hdr amqp091.Table) {
		must(t, ch.Publish(ex, key, false, false, amqp091.Publishing{Headers: hdr, Body: []byte(ex + "/" + key)}))
	}
	pub("amq.direct", "route.eu", nil)
	pub("amq.direct", "route.us", nil)
	pub("amq.fanout", "x", nil)
	pub("amq.topic", "truck.eu.north.3", nil)
	pub("amq.topic", "truck.us", nil)
	pub("amq.headers", "", amqp091.Table{"zone": "north"})
	pub("amq.headers", "", amqp091.Table{"zone": "south"})
	pub("", "qd", nil)

	want := map[string][]string{
		"qd":  {"amq.direct/route.eu", "/qd"},
		"qf1": {"amq.fanout/x"}, "qf2": {"amq.fanout/x"},
		"qt": {"amq.topic/truck.eu.north.3"},
		"qh": {"amq.headers/"},
		"qe": {"amq.topic/truck.eu.north.3", "amq.topic/truck.us"},
	}
	for q, bodies := range want {
		for _, b := range bodies {
			d, ok, err := ch.Get(q, true)
			must(t, err)
			if !ok || string(d.Body) != b {
				t.Fatalf("queue %s: got %q (ok %v), want %q", q, d.Body, ok, b)
			}
		}
		if _, ok, _ := ch.Get(q, true); ok {
			t.Fatalf("queue %s has extra messages", q)
		}
	}
	must(t, ch.QueueUnbind("qd", "route.eu", "amq.direct", nil))
	pub("amq.direct", "route.eu", nil)
	if _, ok, _ := ch.Get("qd", true); ok {
		t.Fatal("unbound queue still receives")
	}
}

func TestQueueDeclareAndErrors(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c1, c2 := dial(t, url), dial(t, url)
	ch := openCh(t, c1)
	q, err := ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-custom": int32(1)})
	must(t, err)
	must(t, ch.Publish("", "work", false, false, amqp091.Publishing{Body: []byte("a")}))
	q, err = ch.QueueDeclarePassive("work", false, false, false, false, nil)
	must(t, err)
	if q.Messages != 1 || q.Consumers != 0 {
		t.Fatalf("declare-ok %+v", q)
	}
	_, err = ch.QueueDeclare("work", false, false, false, false, amqp091.Table{"x-custom": int32(1)})
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'work' in vhost '/': received 'false' but current is 'true'")
	ch = openCh(t, c1)
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-custom": int32(2)})
	must(t, err) // as RabbitMQ: arguments it does not know take no part in equivalence
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-max-length": int32(2)})
	wantCode(t, err, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'work' in vhost '/': received the value '2' of type 'signedint' but current is none")
	ch = openCh(t, c1)
	_, err = ch.QueueDeclarePassive("ghost", false, false, false, false, nil)
	wantCode(t, err, 404, "NOT_FOUND - no queue 'ghost' in vhost '/'")
	ch = openCh(t, c1)
	_, err = ch.QueueDeclare("amq.mine", false, false, false, false, nil)
	wantCode(t, err, 403, "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'")

	ch = openCh(t, c1)
	_, err = ch.QueueDeclare("private", false, false, true, false, nil)
	must(t, err)
	other := openCh(t, c2)
	_, err = other.QueueDeclare("private", false, false, true, false, nil)
	wantCode(t, err, 405, "")
	other = openCh(t, c2)
	_, err = other.Consume("private", "", false, false, false, false, nil)
	wantCode(t, err, 405, "")
	other = openCh(t, c2)
	_, err = other.QueuePurge("private", false)
	wantCode(t, err, 405, "")

	other = openCh(t, c2)
	msgs, err := other.Consume("work", "c", false, false, false, false, nil)
	must(t, err)
	recv(t, msgs)
	_, err = ch.QueueDelete("work", true, false, false)
	wantCode(t, err, 406, "PRECONDITION_FAILED - queue 'work' in vhost '/' in use")
	ch = openCh(t, c1)
	must(t, other.Cancel("c", false))
	must(t, ch.Publish("", "work", false, false, amqp091.Publishing{Body: []byte("b")}))
	_, err = ch.QueueDelete("work", false, true, false)
	wantCode(t, err, 406, "PRECONDITION_FAILED - queue 'work' in vhost '/' not empty")
	ch = openCh(t, c1)
	n, err := ch.QueuePurge("work", false)
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d", n)
	}
	_, err = ch.QueueDelete("work", false, true, false)
	must(t, err)

	// The exclusive queue disappears with its connection.
	c1.Close()
	other = openCh(t, c2)
	_, err = other.QueueDeclarePassive("private", false, false, true, false, nil)
	wantCode(t, err, 404, "")
}

func TestAutoDelete(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	_, err := ch.QueueDeclare("temp", false, true, false, false, nil)
	must(t, err)
	must(t, ch.ExchangeDeclare("tempx", "fanout", false, true, false, false, nil))
	must(t, ch.QueueBind("temp", "", "tempx", false, nil))
	_, err = ch.Consume("temp", "c1", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Cancel("c1", false))
	_, err = ch.QueueDeclarePassive("temp", false, true, false, false, nil)
	wantCode(t, err, 404, "NOT_FOUND - no queue 'temp' in vhost '/'")
	ch = openCh(t, c)
	err = ch.ExchangeDeclarePassive("tempx", "fanout", false, true, false, false, nil)
	wantCode(t, err, 404, "NOT_FOUND - no exchange 'tempx' in vhost '/'")
}
