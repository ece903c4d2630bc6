package amqp

import (
	"errors"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

func declareQ(t *testing.T, ch *amqp091.Channel, name string) {
	t.Helper()
	_, err := ch.QueueDeclare(name, false, false, false, false, nil)
	must(t, err)
}

func pubN(t *testing.T, ch *amqp091.Channel, q string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		must(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: []byte(b)}))
	}
}

func TestMandatoryReturnBeforeConfirm(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	must(t, ch.Confirm(false))
	// One channel for both notifications keeps their relative order observable.
	events := make(chan string, 10)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	go func() {
		r := <-returns
		events <- fmt.Sprintf("return %d %s %s", r.ReplyCode, r.ReplyText, r.Body)
	}()
	must(t, ch.Publish("amq.direct", "nowhere", true, false, amqp091.Publishing{Body: []byte("lost")}))
	r := <-events
	cf := <-confirms
	if r != "return 312 NO_ROUTE lost" || !cf.Ack || cf.DeliveryTag != 1 {
		t.Fatalf("got %q then %+v", r, cf)
	}
}

func TestConfirmNackOnStoreFailure(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, _ queue.Options) (queue.Store, error) {
		if name == "broken" {
			return failingStore{}, nil
		}
		return queue.MemoryStore{}, nil
	}})})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "broken")
	declareQ(t, ch, "fine")
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 3))
	pubN(t, ch, "fine", "1")
	pubN(t, ch, "broken", "2")
	pubN(t, ch, "fine", "3")
	for i, want := range []bool{true, false, true} {
		cf := <-confirms
		if cf.DeliveryTag != uint64(i+1) || cf.Ack != want {
			t.Fatalf("confirm %d: %+v", i+1, cf)
		}
	}
}

type failingStore struct{ queue.MemoryStore }

func (failingStore) Append(uint64, *queue.Message) (queue.Waiter, error) {
	return queue.Waiter{}, errors.New("disk on fire")
}

func TestGetAckNackReject(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	pubN(t, ch, "q", "1", "2", "3", "4", "5")
	var ds []amqp091.Delivery
	for i := 0; i < 5; i++ {
		d, ok, err := ch.Get("q", false)
		must(t, err)
		if !ok || d.MessageCount != uint32(4-i) {
			t.Fatalf("get %d: ok %v count %d", i, ok, d.MessageCount)
		}
		ds = append(ds, d)
	}
	if _, ok, err := ch.Get("q", false); ok || err != nil {
		t.Fatalf("get-empty: %v %v", ok, err)
	}
	must(t, ds[1].Ack(true))        // acks 1 and 2
	must(t, ds[3].Nack(true, true)) // requeues 3 and 4
	must(t, ds[4].Reject(false))    // drops 5
	for _, want := range []string{"3", "4"} {
		d, ok, err := ch.Get("q", false)
		must(t, err)
		if !ok || string(d.Body) != want || !d.Redelivered {
			t.Fatalf("after requeue: %q redelivered %v", d.Body, d.Redelivered)
		}
		must(t, d.Ack(false))
	}
	if _, ok, _ := ch.Get("q", false); ok {
		t.Fatal("queue not empty")
	}
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ds[0].Ack(false)) // already acked
	wantCode(t, <-closed, 406, "PRECONDITION_FAILED - unknown delivery tag 1")
}

func TestRequeueOnCloseAtOriginalPosition(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	pubN(t, ch, "q", "1", "2", "3")
	holder := openCh(t, c)
	must(t, holder.Qos(1, 0, false))
	msgs, err := holder.Consume("q", "h", false, false, false, false, nil)
	must(t, err)
	if d := recv(t, msgs); string(d.Body) != "1" {
		t.Fatalf("first %q", d.Body)
	}
	must(t, holder.Close())
	var got []string
	for i := 0; i < 3; i++ {
		d, ok, err := ch.Get("q", true)
		must(t, err)
		if !ok {
			t.Fatal("message lost")
		}
		got = append(got, fmt.Sprintf("%s:%v", d.Body, d.Redelivered))
	}
	if fmt.Sprint(got) != "[1:true 2:false 3:false]" {
		t.Fatalf("order %v", got)
	}
}

func TestQosPerConsumerAndGlobal(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "a")
	declareQ(t, ch, "b")
	pubN(t, ch, "a", "a1", "a2", "a3")
	pubN(t, ch, "b", "b1", "b2", "b3")
	must(t, ch.Qos(3, 0, true))  // channel-wide: 3 in flight
	must(t, ch.Qos(2, 0, false)) // each consumer: 2 in flight
	ma, err := ch.Consume("a", "ca", false, false, false, false, nil)
	must(t, err)
	mb, err := ch.Consume("b", "cb", false, false, false, false, nil)
	must(t, err)
	// 2 from a (per-consumer limit), then 1 from b (channel limit): 3 in all; then nothing
	// until an ack. A settled count is checked through the queues' declare-ok.
	da1, da2, db1 := recv(t, ma), recv(t, ma), recv(t, mb)
	qa, _ := ch.QueueDeclarePassive("a", false, false, false, false, nil)
	qb, _ := ch.QueueDeclarePassive("b", false, false, false, false, nil)
	if qa.Messages != 1 || qb.Messages != 2 {
		t.Fatalf("ready a=%d b=%d", qa.Messages, qb.Messages)
	}
	must(t, db1.Ack(false))
	if d := recv(t, mb); string(d.Body) != "b2" {
		t.Fatalf("after ack: %q", d.Body)
	}
	_, _ = da1, da2
	wantCode(t, ch.Qos(1, 1024, false), 540, "NOT_IMPLEMENTED - prefetch_size!=0 (1024)")
}

func TestNotImplemented(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.Publish("", "q", false, true, amqp091.Publishing{}))
	// 540 is a hard error in the specification: RabbitMQ closes the connection too.
	wantCode(t, <-closed, 540, "NOT_IMPLEMENTED - immediate=true")
	c2 := dial(t, url)
	ch = openCh(t, c2)
	wantCode(t, ch.Flow(false), 540, "NOT_IMPLEMENTED - active=false")
	c3 := dial(t, url)
	ch = openCh(t, c3)
	must(t, ch.Flow(true))
	wantCode(t, ch.Recover(false), 540, "NOT_IMPLEMENTED - requeue=false")
}

func TestRecover(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	pubN(t, ch, "q", "1", "2")
	msgs, err := ch.Consume("q", "c", false, false, false, false, nil)
	must(t, err)
	recv(t, msgs)
	recv(t, msgs)
	must(t, ch.Recover(true))
	for _, want := range []string{"1", "2"} {
		d := recv(t, msgs)
		if string(d.Body) != want || !d.Redelivered {
			t.Fatalf("redelivery %q %v", d.Body, d.Redelivered)
		}
		must(t, d.Ack(false))
	}
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	must(t, ch.Tx())
	pubN(t, ch, "q", "rolled-back")
	must(t, ch.TxRollback())
	pubN(t, ch, "q", "committed")
	q, _ := ch.QueueDeclarePassive("q", false, false, false, false, nil)
	if q.Messages != 0 {
		t.Fatalf("uncommitted message visible: %d", q.Messages)
	}
	must(t, ch.TxCommit())
	d, ok, err := ch.Get("q", false)
	must(t, err)
	if !ok || string(d.Body) != "committed" {
		t.Fatalf("get %q %v", d.Body, ok)
	}
	must(t, d.Ack(false))
	must(t, ch.TxRollback()) // the ack is undone: the message stays unacked
	must(t, ch.Close())
	ch = openCh(t, c)
	d, ok, _ = ch.Get("q", true)
	if !ok || !d.Redelivered {
		t.Fatalf("rolled-back ack: ok %v redelivered %v", ok, d.Redelivered)
	}
	must(t, ch.Tx())
	wantCode(t, ch.Confirm(false), 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")
	ch = openCh(t, c)
	wantCode(t, ch.TxCommit(), 406, "PRECONDITION_FAILED - channel is not transactional")
}

func TestConsumerPriorityExclusiveAndTags(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "q")
	must(t, ch.Qos(1, 0, false))
	low, err := ch.Consume("q", "low", false, false, false, false, nil)
	must(t, err)
	high, err := ch.Consume("q", "high", false, false, false, false, amqp091.Table{"x-priority": int32(10)})
	must(t, err)
	pubN(t, ch, "q", "1", "2")
	if d := recv(t, high); string(d.Body) != "1" {
		t.Fatalf("high got %q", d.Body)
	}
	if d := recv(t, low); string(d.Body) != "2" {
		t.Fatalf("low got %q", d.Body)
	}
	other := openCh(t, c)
	_, err = other.Consume("q", "ex", false, true, false, false, nil)
	wantCode(t, err, 403, "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use")
	_, err = ch.Consume("q", "low", false, false, false, false, nil)
	wantCode(t, err, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'low'")
}

func TestServerCancelsConsumersOfDeletedQueue(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	ch := openCh(t, c)
	declareQ(t, ch, "doomed")
	cancels := ch.NotifyCancel(make(chan string, 1))
	_, err := ch.Consume("doomed", "watcher", false, false, false, false, nil)
	must(t, err)
	admin := openCh(t, dial(t, url))
	_, err = admin.QueueDelete("doomed", false, false, false)
	must(t, err)
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel from the server")
	}
}

// TestConfirmsCoalesced publishes without waiting: the server coalesces confirms into
// multiple acks, which the client expands; every publish must be confirmed once, in order.
func TestConfirmsCoalesced(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	declareQ(t, ch, "q")
	must(t, ch.Confirm(false))
	const n = 2000
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	for i := 0; i < n; i++ {
		pubN(t, ch, "q", "m")
	}
	for i := 1; i <= n; i++ {
		if cf := <-confirms; !cf.Ack || cf.DeliveryTag != uint64(i) {
			t.Fatalf("confirm %d: %+v", i, cf)
		}
	}
	q, err := ch.QueueDeclarePassive("q", false, false, false, false, nil)
	must(t, err)
	if q.Messages != n {
		t.Fatalf("%d messages queued", q.Messages)
	}
}

// TestNoAckConsumerBackpressure drains a backlog several times larger than the socket backlog
// limit into a no-ack consumer: deliveries pause when the output backlog is full and resume
// when the writer drains it, and nothing is lost or duplicated.
func TestNoAckConsumerBackpressure(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	ch := openCh(t, dial(t, url))
	declareQ(t, ch, "big")
	const n = 6000
	body := make([]byte, 1024)
	for i := 0; i < n; i++ {
		body[0], body[1] = byte(i>>8), byte(i)
		must(t, ch.Publish("", "big", false, false, amqp091.Publishing{Body: body}))
	}
	cch := openCh(t, dial(t, url))
	msgs, err := cch.Consume("big", "", true, false, false, false, nil)
	must(t, err)
	for i := 0; i < n; i++ {
		d := recv(t, msgs)
		if got := int(d.Body[0])<<8 | int(d.Body[1]); got != i {
			t.Fatalf("message %d arrived as %d", i, got)
		}
	}
}
