package amqp

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// waitGet polls basic.get until a message arrives (dead-lettering and expiry happen
// asynchronously), failing after 10 s.
func waitGet(t *testing.T, ch *amqp091.Channel, q string) amqp091.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := ch.Get(q, true)
		must(t, err)
		if ok {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing arrived in %s", q)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func deadLetterSetup(t *testing.T, ch *amqp091.Channel, src string, args amqp091.Table) {
	t.Helper()
	must(t, ch.ExchangeDeclare("dlx-"+src, "fanout", false, true, false, false, nil))
	_, err := ch.QueueDeclare("dead-"+src, false, false, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind("dead-"+src, "", "dlx-"+src, false, nil))
	args["x-dead-letter-exchange"] = "dlx-" + src
	_, err = ch.QueueDeclare(src, false, false, false, false, args)
	must(t, err)
}

func checkDeath(t *testing.T, m amqp091.Delivery, reason, queue string, count int64) {
	t.Helper()
	deaths, _ := m.Headers["x-death"].([]any)
	if len(deaths) == 0 {
		t.Fatalf("no x-death header: %v", m.Headers)
	}
	d, _ := deaths[0].(amqp091.Table)
	keys, _ := d["routing-keys"].([]any)
	if d["reason"] != reason || d["queue"] != queue || d["count"] != count || d["exchange"] != "" || len(keys) != 1 || keys[0] != queue {
		t.Fatalf("x-death %v, want reason %s queue %s count %d", d, reason, queue, count)
	}
	if _, ok := d["time"].(time.Time); !ok {
		t.Fatalf("x-death time %T", d["time"])
	}
	if m.Headers["x-first-death-reason"] != reason || m.Headers["x-first-death-queue"] != queue {
		t.Fatalf("x-first-death-* %v", m.Headers)
	}
}

func TestMessageTTLDeadLetters(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	deadLetterSetup(t, ch, "ttl", amqp091.Table{"x-message-ttl": int32(30)})
	must(t, ch.Publish("", "ttl", false, false, amqp091.Publishing{Body: []byte("old")}))
	m := waitGet(t, ch, "dead-ttl")
	if string(m.Body) != "old" {
		t.Fatalf("body %q", m.Body)
	}
	checkDeath(t, m, "expired", "ttl", 1)
	// Per-message expiration on a queue without TTL; the expiration property is removed.
	deadLetterSetup(t, ch, "pm", amqp091.Table{})
	must(t, ch.Publish("", "pm", false, false, amqp091.Publishing{Expiration: "0", Body: []byte("now")}))
	m = waitGet(t, ch, "dead-pm")
	checkDeath(t, m, "expired", "pm", 1)
	if m.Expiration != "" {
		t.Fatalf("dead-lettered message kept expiration %q", m.Expiration)
	}
}

func TestMaxLengthOverflow(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	deadLetterSetup(t, ch, "ml", amqp091.Table{"x-max-length": int32(2)})
	for i := range 3 {
		must(t, ch.Publish("", "ml", false, false, amqp091.Publishing{Body: []byte(fmt.Sprint(i))}))
	}
	m := waitGet(t, ch, "dead-ml")
	if string(m.Body) != "0" {
		t.Fatalf("drop-head dropped %q, want the oldest", m.Body)
	}
	checkDeath(t, m, "maxlen", "ml", 1)
	q, err := ch.QueueDeclarePassive("ml", false, false, false, false, nil)
	if err != nil || q.Messages != 2 {
		t.Fatalf("ml holds %d, want 2 (%v)", q.Messages, err)
	}

	// reject-publish: the publisher gets a nack.
	_, err = ch.QueueDeclare("rp", false, false, false, false, amqp091.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	must(t, err)
	must(t, ch.Confirm(false))
	var acks []bool
	for range 2 {
		dc, err := ch.PublishWithDeferredConfirm("", "rp", false, false, amqp091.Publishing{Body: []byte("x")})
		must(t, err)
		acks = append(acks, dc.Wait())
	}
	if !acks[0] || acks[1] {
		t.Fatalf("reject-publish confirms %v, want [true false]", acks)
	}
	// Bad arguments are refused at declare, as RabbitMQ does.
	_, err = ch.QueueDeclare("bad", false, false, false, false, amqp091.Table{"x-overflow": "explode"})
	wantCode(t, err, 406, "")
}

func TestRejectAndDeliveryLimitDeadLetter(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	deadLetterSetup(t, ch, "rj", amqp091.Table{})
	must(t, ch.Publish("", "rj", false, false, amqp091.Publishing{Body: []byte("no")}))
	m, ok, err := ch.Get("rj", false)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	must(t, m.Reject(false))
	checkDeath(t, waitGet(t, ch, "dead-rj"), "rejected", "rj", 1)

	deadLetterSetup(t, ch, "dl", amqp091.Table{"x-delivery-limit": int32(1)})
	must(t, ch.Publish("", "dl", false, false, amqp091.Publishing{Body: []byte("poison")}))
	for i := range 2 {
		m, ok, err := ch.Get("dl", false)
		if err != nil || !ok {
			t.Fatalf("delivery %d: %v %v", i, ok, err)
		}
		if got, _ := m.Headers["x-delivery-count"].(int64); got != int64(i) {
			t.Fatalf("delivery %d has x-delivery-count %v", i, m.Headers["x-delivery-count"])
		}
		must(t, m.Nack(false, true))
	}
	checkDeath(t, waitGet(t, ch, "dead-dl"), "delivery_limit", "dl", 1)
	if _, ok, _ := ch.Get("dl", false); ok {
		t.Fatal("poison message still in its queue")
	}
}

func TestSingleActiveConsumer(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("sac", false, false, false, false, amqp091.Table{"x-single-active-consumer": true})
	must(t, err)
	a, err := ch.Consume("sac", "a", true, false, false, false, nil)
	must(t, err)
	ch2 := openCh(t, dial(t, url))
	b, err := ch2.Consume("sac", "b", true, false, false, false, nil)
	must(t, err)
	for i := range 4 {
		must(t, ch.Publish("", "sac", false, false, amqp091.Publishing{Body: []byte(fmt.Sprint(i))}))
	}
	for i := range 4 {
		if m := recv(t, a); string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("active consumer got %q", m.Body)
		}
	}
	select {
	case m := <-b:
		t.Fatalf("inactive consumer got %q", m.Body)
	default:
	}
	must(t, ch.Cancel("a", false))
	must(t, ch.Publish("", "sac", false, false, amqp091.Publishing{Body: []byte("next")}))
	if m := recv(t, b); string(m.Body) != "next" {
		t.Fatalf("new active consumer got %q", m.Body)
	}
}

func TestPriorityQueueAndExpires(t *testing.T) {
	t.Parallel()
	srv, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("prio", false, false, false, false, amqp091.Table{"x-max-priority": int32(10)})
	must(t, err)
	for _, p := range []uint8{1, 5, 0, 9, 5} {
		must(t, ch.Publish("", "prio", false, false, amqp091.Publishing{Priority: p, Body: []byte(fmt.Sprint(p))}))
	}
	var got []string
	for range 5 {
		got = append(got, string(waitGet(t, ch, "prio").Body))
	}
	if fmt.Sprint(got) != "[9 5 5 1 0]" {
		t.Fatalf("priority order %v", got)
	}

	_, err = ch.QueueDeclare("exp", false, false, false, false, amqp091.Table{"x-expires": int32(50)})
	must(t, err)
	// Watched in the registry: a passive declare would renew x-expires, as in RabbitMQ.
	deadline := time.Now().Add(10 * time.Second)
	for srv.vhosts.Get("/").Queue("exp") != nil {
		if time.Now().After(deadline) {
			t.Fatal("x-expires queue still there after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = openCh(t, dial(t, url)).QueueDeclarePassive("exp", false, false, false, false, nil)
	wantCode(t, err, 404, "")
}

// TestDeadLetterTwiceCountsInOneEntry: a message rejected from a, then b, then a again carries
// one x-death entry per queue and reason, most recent first, a's with count 2, as RabbitMQ's.
func TestDeadLetterTwiceCountsInOneEntry(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	for _, q := range [][2]string{{"ping", "pong"}, {"pong", "ping"}} {
		_, err := ch.QueueDeclare(q[0], false, false, false, false, amqp091.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q[1]})
		must(t, err)
	}
	must(t, ch.Publish("", "ping", false, false, amqp091.Publishing{Body: []byte("ball")}))
	for _, q := range []string{"ping", "pong", "ping"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, ok, err := ch.Get(q, false)
			must(t, err)
			if ok {
				must(t, got.Reject(false))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing arrived in %s", q)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	m := waitGet(t, ch, "pong")
	deaths, _ := m.Headers["x-death"].([]any)
	if len(deaths) != 2 {
		t.Fatalf("x-death %v, want two entries", deaths)
	}
	first, _ := deaths[0].(amqp091.Table)
	second, _ := deaths[1].(amqp091.Table)
	if first["queue"] != "ping" || first["count"] != int64(2) || second["queue"] != "pong" || second["count"] != int64(1) {
		t.Fatalf("x-death %v", deaths)
	}
	if m.Headers["x-first-death-queue"] != "ping" || m.Headers["x-last-death-queue"] != "ping" {
		t.Fatalf("x-first/last-death-* %v", m.Headers)
	}
}
