package adversarial_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

const (
	amqpMutationRounds = 3000
	amqpMutationBudget = 30 * time.Second
	canaryMessages     = 300
)

// TestAMQPMutatedFrames replays mutated frames from real amqp091-go sessions (topology,
// confirmed publishing, consuming, get, reject, nack, transactions, QoS) and checks that yard
// keeps serving fresh clients, keeps every confirmed message, and logs no panic.
func TestAMQPMutatedFrames(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	rec := newRecorder(t, y.AMQPAddr)
	recordAMQPSession(t, rec.addr())
	var sessions [][][]byte
	for _, s := range rec.sessions() {
		if f := amqpFrames(s); len(f) > 1 {
			sessions = append(sessions, f)
		}
	}
	if len(sessions) == 0 {
		t.Fatal("no AMQP session was recorded")
	}
	publishCanary(t, y.AMQPAddr, "canary")

	n := runMutations(t, y, y.AMQPAddr, sessions, amqpMutationRounds, amqpMutationBudget, mutateAMQP,
		func() error { return amqpAlive(y.AMQPAddr) })
	t.Logf("%d mutated AMQP sessions replayed from %d recorded connections", n, len(sessions))
	checkCanaryQueue(t, y.AMQPAddr, "canary")
	checkNoPanic(t, y)
}

func amqpDial(t *testing.T, addr string) (*amqp091.Connection, *amqp091.Channel) {
	t.Helper()
	c, err := amqp091.Dial("amqp://guest:guest@" + addr + "/")
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

// publishCanary publishes canaryMessages persistent messages with confirms to a durable queue.
func publishCanary(t *testing.T, addr, queue string) {
	t.Helper()
	c, ch := amqpDial(t, addr)
	defer c.Close()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for i := range canaryMessages {
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, Body: []byte(fmt.Sprintf("canary-%05d", i))})
		if err != nil || !dc.Wait() {
			t.Fatalf("canary %d not confirmed: %v", i, err)
		}
	}
}

// checkCanaryQueue consumes the canary queue and expects every confirmed message, in order.
func checkCanaryQueue(t *testing.T, addr, queue string) {
	t.Helper()
	c, ch := amqpDial(t, addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msgs, err := ch.ConsumeWithContext(ctx, queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range canaryMessages {
		select {
		case m := <-msgs:
			if want := fmt.Sprintf("canary-%05d", i); string(m.Body) != want {
				t.Fatalf("canary message %d is %q, want %q", i, m.Body, want)
			}
			m.Ack(false)
		case <-ctx.Done():
			t.Fatalf("canary: %d of %d confirmed messages delivered", i, canaryMessages)
		}
	}
}

// recordAMQPSession runs a spread of real client work through the recorder.
func recordAMQPSession(t *testing.T, addr string) {
	t.Helper()
	c, ch := amqpDial(t, addr)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("mx", "topic", true, false, false, false, amqp091.Table{"alternate-exchange": "ax"}))
	_, err := ch.QueueDeclare("mq", true, false, false, false, amqp091.Table{
		"x-max-length": int32(1000), "x-message-ttl": int64(600000), "x-max-priority": int32(5),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"})
	must(err)
	_, err = ch.QueueDeclare("dlq", true, false, false, false, nil)
	must(err)
	must(ch.QueueBind("mq", "a.#", "mx", false, nil))
	must(ch.Confirm(false))
	for i := range 30 {
		dc, err := ch.PublishWithDeferredConfirm("mx", "a.b", false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, Priority: uint8(i % 6), ContentType: "text/plain",
			Headers:    amqp091.Table{"n": int32(i), "s": "x", "l": []any{int32(1), "y"}},
			Expiration: "600000", MessageId: fmt.Sprint(i), Body: []byte(fmt.Sprintf("body-%d", i))})
		must(err)
		if !dc.Wait() {
			t.Fatal("nacked")
		}
	}
	must(ch.Qos(5, 0, false))
	if m, ok, err := ch.Get("mq", false); err == nil && ok {
		must(m.Reject(true))
	}
	if m, ok, err := ch.Get("mq", false); err == nil && ok {
		must(m.Nack(false, false))
	}
	msgs, err := ch.Consume("mq", "ctag", false, false, false, false, nil)
	must(err)
	for range 10 {
		m := <-msgs
		must(m.Ack(false))
	}
	must(ch.Cancel("ctag", false))
	tx, err := c.Channel()
	must(err)
	must(tx.Tx())
	must(tx.Publish("", "mq", false, false, amqp091.Publishing{Body: []byte("in tx")}))
	must(tx.TxCommit())
	must(tx.Close())
	_, err = ch.QueuePurge("dlq", false)
	must(err)
	must(ch.QueueUnbind("mq", "a.#", "mx", nil))
	must(c.Close())
}

// amqpAlive opens a fresh connection and channel and declares a server-named queue.
func amqpAlive(addr string) error {
	done := make(chan error, 1)
	go func() {
		c, err := amqp091.DialConfig("amqp://guest:guest@"+addr+"/", amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err == nil {
			_, err = ch.QueueDeclare("", false, true, true, false, nil)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		return errors.New("no answer within 15 s")
	}
}
