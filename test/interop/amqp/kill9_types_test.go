package amqp_test

// kill -9 under confirmed publish load for each queue type besides classic (which
// TestKill9UnderConfirmedPublishLoad covers): quorum, priority and stream. Publishers publish
// with confirms until the process is killed under them; after the restart every message yard
// confirmed must be there, intact.

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// kill9Kind is a queue type under test: how it is declared and published to.
type kill9Kind struct {
	name string
	args amqp091.Table
	// publishing dresses message i (delivery mode, priority).
	publishing func(p *amqp091.Publishing, i int)
}

var kill9Kinds = []kill9Kind{
	// Quorum queues keep every message as persistent whatever its delivery mode: publish
	// transient ones, all of which must survive.
	{"quorum", amqp091.Table{"x-queue-type": "quorum"}, func(p *amqp091.Publishing, i int) { p.DeliveryMode = 1 }},
	{"priority", amqp091.Table{"x-max-priority": int32(5)}, func(p *amqp091.Publishing, i int) {
		p.DeliveryMode, p.Priority = 2, uint8(i%7) // 6 is above the maximum: treated as 5
	}},
	// Stream queues are always durable, whatever the delivery mode.
	{"stream", amqp091.Table{"x-queue-type": "stream"}, func(p *amqp091.Publishing, i int) { p.DeliveryMode = 1 }},
}

// publishKindUntilDead publishes to queue with confirms until the connection dies, recording
// every confirmed message id.
func publishKindUntilDead(y *harness.Yard, k kill9Kind, queue, prefix string, conf *confirmedSet, sent *atomic.Int64) {
	c, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		return
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil || ch.Confirm(false) != nil {
		return
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 4096))
	var mu sync.Mutex
	bySeq := map[uint64]string{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cf := range confirms {
			mu.Lock()
			id := bySeq[cf.DeliveryTag]
			delete(bySeq, cf.DeliveryTag)
			mu.Unlock()
			if cf.Ack {
				conf.add(id)
			}
		}
	}()
	for i := 0; ; i++ {
		id := prefix + "-" + strconv.Itoa(i)
		mu.Lock()
		bySeq[ch.GetNextPublishSeqNo()] = id
		mu.Unlock()
		p := amqp091.Publishing{MessageId: id, Body: bodyFor(id)}
		k.publishing(&p, i)
		if err := ch.PublishWithContext(context.Background(), "", queue, false, false, p); err != nil {
			break
		}
		sent.Add(1)
	}
	<-done
}

// drainKind returns the ids of every message in queue after a restart, checking bodies.
func drainKind(t *testing.T, y *harness.Yard, k kill9Kind, queue string, want *confirmedSet) map[string]bool {
	t.Helper()
	_, ch := dialY(t, y)
	seen := map[string]bool{}
	check := func(m amqp091.Delivery) {
		if !bytes.Equal(m.Body, bodyFor(m.MessageId)) {
			t.Fatalf("message %q came back damaged: %d-byte body", m.MessageId, len(m.Body))
		}
		seen[m.MessageId] = true
	}
	if k.name != "stream" {
		for {
			m, ok, err := ch.Get(queue, false)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return seen
			}
			check(m)
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A stream is read, not drained: read from the start until every confirmed message came.
	if err := ch.Qos(500, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, amqp091.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(60 * time.Second)
	for missing := want.len(); missing > 0; {
		select {
		case m := <-msgs:
			check(m)
			if want.ids[m.MessageId] {
				missing--
			}
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			return seen // the caller reports what is missing
		}
	}
	return seen
}

func TestKill9ConfirmedByQueueType(t *testing.T) {
	t.Parallel()
	for _, k := range kill9Kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			y := harness.Start(t)
			queue := "k9-" + k.name
			_, ch := dialY(t, y)
			if _, err := ch.QueueDeclare(queue, true, false, false, false, k.args); err != nil {
				t.Fatal(err)
			}
			const publishers, minConfirmed = 3, 1500
			conf := &confirmedSet{ids: map[string]bool{}}
			var sent atomic.Int64
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					publishKindUntilDead(y, k, queue, fmt.Sprintf("p%d", p), conf, &sent)
				}()
			}
			deadline := time.Now().Add(60 * time.Second)
			for conf.len() < minConfirmed && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			y.Kill() // mid-stream: publishers have messages in flight
			wg.Wait()
			if conf.len() < minConfirmed {
				t.Fatalf("only %d confirms before the kill", conf.len())
			}
			y.Restart()
			seen := drainKind(t, y, k, queue, conf)
			missing := 0
			for id := range conf.ids {
				if !seen[id] {
					missing++
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d confirmed messages lost by kill -9 (%d sent, %d recovered)", missing, conf.len(), sent.Load(), len(seen))
			}
			t.Logf("%d sent, %d confirmed, %d recovered, none lost", sent.Load(), conf.len(), len(seen))
		})
	}
}
