package amqp_test

// Durability (issue 6): durable topology survives restart, transient does not; persistent
// messages on durable queues survive kill -9, and every message yard confirmed is delivered
// after the restart with its body and headers intact.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

func dialY(t *testing.T, y *harness.Yard) (*amqp091.Connection, *amqp091.Channel) {
	t.Helper()
	c, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return c, ch
}

func TestDurableTopologySurvivesRestart(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	args := amqp091.Table{"x-max-length": int32(100), "x-custom": int64(7)}
	// Publishes are confirmed before the kill below: only a confirm promises durability (an
	// unconfirmed message may still be in the queue's write buffer, as in RabbitMQ).
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish := func(ex, key string, p amqp091.Publishing) error {
		dc, err := ch.PublishWithDeferredConfirm(ex, key, false, false, p)
		if err == nil && !dc.Wait() {
			err = errors.New("publish nacked")
		}
		return err
	}
	steps := []error{
		ch.ExchangeDeclare("dx", "topic", true, false, false, false, nil),
		ch.ExchangeDeclare("tx", "fanout", false, false, false, false, nil),
		func() error { _, err := ch.QueueDeclare("dq", true, false, false, false, args); return err }(),
		func() error { _, err := ch.QueueDeclare("tq", false, false, false, false, nil); return err }(),
		ch.QueueBind("dq", "a.#", "dx", false, nil),
		publish("dx", "a.b", amqp091.Publishing{DeliveryMode: 2, Headers: amqp091.Table{"h": "v"}, Body: []byte("persistent")}),
		publish("dx", "a.b", amqp091.Publishing{DeliveryMode: 1, Body: []byte("transient")}),
		publish("", "tq", amqp091.Publishing{DeliveryMode: 2, Body: []byte("on a transient queue")}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if q, err := ch.QueueDeclarePassive("dq", true, false, false, false, args); err != nil || q.Messages != 2 {
		t.Fatalf("before restart: %+v %v", q, err)
	}
	for _, kill := range []bool{false, true} {
		if kill {
			y.Kill()
		}
		y.Restart()
		_, ch = dialY(t, y)
		if _, err := ch.QueueDeclare("dq", true, false, false, false, args); err != nil {
			t.Fatalf("redeclaring dq with its arguments after restart (kill=%v): %v", kill, err)
		}
		if err := ch.ExchangeDeclarePassive("dx", "topic", true, false, false, false, nil); err != nil {
			t.Fatalf("dx after restart: %v", err)
		}
		for _, probe := range []func(*amqp091.Channel) error{
			func(c *amqp091.Channel) error {
				_, err := c.QueueDeclarePassive("tq", false, false, false, false, nil)
				return err
			},
			func(c *amqp091.Channel) error {
				return c.ExchangeDeclarePassive("tx", "fanout", false, false, false, false, nil)
			},
		} {
			var ae *amqp091.Error
			if err := probe(ch); !errors.As(err, &ae) || ae.Code != 404 {
				t.Fatalf("transient object after restart: %v, want 404", err)
			}
			_, ch = dialY(t, y)
		}
		if !kill {
			m, ok, err := ch.Get("dq", false)
			if err != nil || !ok || string(m.Body) != "persistent" || m.Headers["h"] != "v" || m.DeliveryMode != 2 {
				t.Fatalf("persistent message after restart: %+v %v %v", m, ok, err)
			}
			if m, ok, _ := ch.Get("dq", false); ok {
				t.Fatalf("transient message survived a restart: %q", m.Body)
			}
			// The binding survived: a new publish to dx reaches dq.
			if err := ch.Confirm(false); err != nil {
				t.Fatal(err)
			}
			dc, err := ch.PublishWithDeferredConfirm("dx", "a.c", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte("bound")})
			if err != nil || !dc.Wait() {
				t.Fatalf("publish through the restored binding: %v", err)
			}
			// Unacked "persistent" goes back on close; ack only "bound" below after the kill.
		}
	}
	var got []string
	for {
		m, ok, err := ch.Get("dq", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		s := string(m.Body)
		if m.Redelivered {
			s += "*"
		}
		got = append(got, s)
		m.Ack(false)
	}
	// "persistent" was delivered before the kill, so it must come back flagged redelivered;
	// "bound" may be flagged too (the delivered-through mark is written ahead, which AMQP's
	// "may have been delivered" allows).
	if g := fmt.Sprint(got); g != "[persistent* bound]" && g != "[persistent* bound*]" {
		t.Fatalf("after kill -9: %v, want [persistent* bound] (the first was delivered before)", got)
	}
}

// confirmedSet records what the broker confirmed: id -> body length.
type confirmedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *confirmedSet) add(id string) { s.mu.Lock(); s.ids[id] = true; s.mu.Unlock() }
func (s *confirmedSet) len() int      { s.mu.Lock(); defer s.mu.Unlock(); return len(s.ids) }

func bodyFor(id string) []byte {
	return bytes.Repeat([]byte(id+";"), 1024/(len(id)+1)+1)[:1024]
}

// publishUntilDead publishes persistent messages to "kq", each with headers "id" and "n", with
// confirms until the connection dies, recording every confirmed message (publishKindUntilDead,
// for a classic queue).
func publishUntilDead(y *harness.Yard, prefix string, conf *confirmedSet, sent *atomic.Int64) {
	persistent := kill9Kind{name: "classic", publishing: func(p *amqp091.Publishing, i int) {
		p.DeliveryMode, p.Headers = 2, amqp091.Table{"id": p.MessageId, "n": int64(i)}
	}}
	publishKindUntilDead(y, persistent, "kq", prefix, conf, sent)
}

// consumeUntilDead consumes kq with manual acks until the connection dies, recording every
// message whose ack it sent.
func consumeUntilDead(y *harness.Yard, acked *confirmedSet) {
	c, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		return
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil || ch.Qos(100, 0, false) != nil {
		return
	}
	msgs, err := ch.Consume("kq", "", false, false, false, false, nil)
	if err != nil {
		return
	}
	for m := range msgs {
		id, _ := m.Headers["id"].(string)
		if m.Ack(false) != nil {
			return
		}
		acked.add(id)
	}
}

func TestKill9UnderConfirmedPublishLoad(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	if _, err := ch.QueueDeclare("kq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const rounds, publishers, minConfirmed = 5, 3, 2000
	for round := range rounds {
		conf := &confirmedSet{ids: map[string]bool{}}
		acked := &confirmedSet{ids: map[string]bool{}}
		var sent atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // a consumer acks while the publishers publish: settlements are in flight at the kill
			defer wg.Done()
			consumeUntilDead(y, acked)
		}()
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishUntilDead(y, fmt.Sprintf("r%dp%d", round, p), conf, &sent)
			}()
		}
		deadline := time.Now().Add(60 * time.Second)
		for conf.len() < minConfirmed && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		y.Kill() // mid-stream: publishers have messages in flight
		wg.Wait()
		if conf.len() < minConfirmed {
			t.Fatalf("round %d: only %d confirms before the kill", round, conf.len())
		}
		y.Restart()
		_, ch = dialY(t, y)
		seen := map[string]bool{}
		for {
			m, ok, err := ch.Get("kq", false)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			id, _ := m.Headers["id"].(string)
			if id != m.MessageId || !bytes.Equal(m.Body, bodyFor(id)) || m.DeliveryMode != 2 {
				t.Fatalf("round %d: message %q came back damaged: id header %q, %d-byte body", round, m.MessageId, id, len(m.Body))
			}
			seen[id] = true
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
		missing := 0
		for id := range conf.ids {
			if !seen[id] && !acked.ids[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("round %d: %d of %d confirmed messages lost by kill -9", round, missing, conf.len())
		}
		t.Logf("round %d: %d sent, %d confirmed, %d acked before the kill, %d recovered, none lost", round, sent.Load(), conf.len(), acked.len(), len(seen))
	}
}

// TestOrphanQueueStoreKept: a queue store that no durable queue owns (a crash between
// creating a queue's store and saving the topology leaves one) is kept at start and logged,
// never deleted without a tombstone; a queue declared later under that name moves it aside, so
// that its old messages do not turn up in the new queue.
func TestOrphanQueueStoreKept(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("keep", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", "keep", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte("kept")})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish: %v", err)
	}
	y.Kill()
	// Fake the crash's leftover: a store with a message, under a name the topology lacks.
	vhostDir := filepath.Join(y.DataDir, "queues", "%2F")
	if err := os.CopyFS(filepath.Join(vhostDir, "orphan"), os.DirFS(filepath.Join(vhostDir, "keep"))); err != nil {
		t.Fatal(err)
	}
	y.Restart()
	_, ch = dialY(t, y)
	q, err := ch.QueueDeclare("orphan", true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("queue declared over an orphan store: %+v %v, want 0 messages", q, err)
	}
	if q, err := ch.QueueDeclarePassive("keep", true, false, false, false, nil); err != nil || q.Messages != 1 {
		t.Fatalf("keep after restart: %+v %v, want 1 message", q, err)
	}
	if !strings.Contains(y.Log(), "keeping a queue store that no durable queue of the topology owns") {
		t.Fatalf("the orphan store was not logged:\n%s", y.Log())
	}
	moved, _ := filepath.Glob(filepath.Join(vhostDir, "orphan.orphan-*"))
	if len(moved) != 1 {
		t.Fatalf("orphan store not kept aside: %v", moved)
	}
	if _, err := os.Stat(filepath.Join(moved[0], "messages")); err != nil {
		t.Fatalf("moved-aside store lost its messages log: %v", err)
	}
}

// TestQuorumQueueKeepsEveryMessage: a quorum queue keeps every message as persistent,
// whatever its delivery mode (as RabbitMQ's do): a confirmed delivery-mode 1 message is back
// after kill -9.
func TestQuorumQueueKeepsEveryMessage(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	args := amqp091.Table{"x-queue-type": "quorum"}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", "orders", false, false, amqp091.Publishing{DeliveryMode: 1, Body: []byte("transient by mode")})
	if err != nil || !dc.Wait() {
		t.Fatalf("publish: %v", err)
	}
	y.Kill()
	y.Restart()
	_, ch = dialY(t, y)
	m, ok, err := ch.Get("orders", true)
	if err != nil || !ok || string(m.Body) != "transient by mode" {
		t.Fatalf("quorum queue after kill -9: %q %v %v", m.Body, ok, err)
	}
}
