package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestServeClusterQuorumQueueDelete: a quorum queue deleted through node 1 of three
// processes is gone from every node; its consumer on node 2 gets basic.cancel; if-unused is
// refused while it has that consumer; declared again, it is a new, empty queue that works.
func TestServeClusterQuorumQueueDelete(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	args := amqp.Table{"x-queue-type": "quorum"}
	eventually(t, "declare qd", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qd", true, false, false, false, args)
			return err
		})
	})
	// node 3 routes to qd once it applied the declaration: published before, a message
	// would be unroutable there (confirmed and dropped)
	eventually(t, "qd on node 3", func() error {
		return onChannel(ys[2], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive("qd", true, false, false, false, args)
			return err
		})
	})
	eventually(t, "publish to qd through node 3", func() error {
		return onChannel(ys[2], func(ch *amqp.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			for i := range 5 {
				dc, err := ch.PublishWithDeferredConfirm("", "qd", false, false, amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)})
				if err != nil {
					return err
				}
				if !dc.Wait() {
					return errors.New("nacked")
				}
			}
			return nil
		})
	})

	conn, err := amqp.Dial(amqpURL(ys[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	cancels := cch.NotifyCancel(make(chan string, 1))
	if err := cch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("qd", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-ds:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
		}
	}

	// node 1 sees the consumer of node 2: if-unused is refused, if-empty too (3 ready)
	eventually(t, "consumer seen on node 1", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qd", true, false, false, false, args)
			if err == nil && (q.Consumers != 1 || q.Messages != 3) {
				err = fmt.Errorf("node 1 sees %d consumers, %d ready", q.Consumers, q.Messages)
			}
			return err
		})
	})
	for _, c := range []struct{ unused, empty bool }{{true, false}, {false, true}} {
		err := onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete("qd", c.unused, c.empty, false)
			return err
		})
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
			t.Fatalf("delete if-unused=%v if-empty=%v: %v, want 406", c.unused, c.empty, err)
		}
	}

	if err := onChannel(ys[0], func(ch *amqp.Channel) error {
		n, err := ch.QueueDelete("qd", false, false, false)
		if err == nil && n != 3 {
			err = fmt.Errorf("delete-ok says %d messages, want 3", n)
		}
		return err
	}); err != nil {
		t.Fatalf("delete qd through node 1: %v", err)
	}
	select {
	case tag := <-cancels:
		if tag != "c1" {
			t.Fatalf("cancelled %q", tag)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node 2's consumer got no basic.cancel")
	}
	for i, y := range ys {
		eventually(t, fmt.Sprintf("qd gone from node %d", i+1), func() error {
			err := onChannel(y, func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclarePassive("qd", true, false, false, false, args)
				return err
			})
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				return nil
			}
			return fmt.Errorf("passive declare: %v", err)
		})
	}

	// declared again through node 2: empty on every node, and it works
	eventually(t, "redeclare qd", func() error {
		return onChannel(ys[1], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qd", true, false, false, false, args)
			return err
		})
	})
	for i, y := range ys {
		eventually(t, fmt.Sprintf("qd empty on node %d", i+1), func() error {
			return onChannel(y, func(ch *amqp.Channel) error {
				q, err := ch.QueueDeclarePassive("qd", true, false, false, false, args)
				if err == nil && (q.Messages != 0 || q.Consumers != 0) {
					err = fmt.Errorf("%d messages, %d consumers", q.Messages, q.Consumers)
				}
				return err
			})
		})
	}
	eventually(t, "publish to the new qd", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			dc, err := ch.PublishWithDeferredConfirm("", "qd", false, false, amqp.Publishing{Body: []byte("new")})
			if err != nil {
				return err
			}
			if !dc.Wait() {
				return errors.New("nacked")
			}
			return nil
		})
	})
	if err := onChannel(ys[2], func(ch *amqp.Channel) error {
		ds, err := ch.Consume("qd", "", true, false, false, false, nil)
		if err != nil {
			return err
		}
		select {
		case d := <-ds:
			if string(d.Body) != "new" {
				return fmt.Errorf("got %q from the new queue", d.Body)
			}
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("no delivery from the new queue")
		}
	}); err != nil {
		t.Fatal(err)
	}
}

// publishConfirmed publishes bodies to queue q through y with confirms, once y has q (a
// node that has not applied a declaration made through another yet would find the message
// unroutable: confirmed, and dropped).
func publishConfirmed(t *testing.T, y *harness.Yard, q string, bodies ...string) {
	t.Helper()
	eventually(t, q+" on the publisher's node", func() error {
		return onChannel(y, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			return err
		})
	})
	eventually(t, "publish to "+q, func() error {
		return onChannel(y, func(ch *amqp.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			for _, b := range bodies {
				dc, err := ch.PublishWithDeferredConfirm("", q, false, false, amqp.Publishing{Body: []byte(b)})
				if err != nil {
					return err
				}
				if !dc.Wait() {
					return errors.New("nacked")
				}
			}
			return nil
		})
	})
}

// TestServeClusterQuorumQueueGetPurge: basic.get through a follower of the queue's group,
// with ack, with reject(requeue) (x-delivery-count grows) and with no-ack; queue.purge
// through one node removes the ready messages, not the one a consumer holds, as node 1's
// passive declare counts.
func TestServeClusterQuorumQueueGetPurge(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	args := amqp.Table{"x-queue-type": "quorum"}
	eventually(t, "declare qg", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qg", true, false, false, false, args)
			return err
		})
	})
	publishConfirmed(t, ys[0], "qg", "a", "b", "c", "d", "e")
	var leader uint64
	eventually(t, "qg's leader", func() error {
		if leader = quorumLeader(ys[0], "qg"); leader == 0 {
			return errors.New("no leader known")
		}
		return nil
	})
	follower := ys[leader%3] // node leader+1

	conn, err := amqp.Dial(amqpURL(follower))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	get := func(noAck bool) amqp.Delivery {
		t.Helper()
		d, ok, err := ch.Get("qg", noAck)
		if err != nil || !ok {
			t.Fatalf("basic.get: ok %v, %v", ok, err)
		}
		return d
	}
	d := get(false)
	if string(d.Body) != "a" || d.MessageCount != 4 || d.Redelivered {
		t.Fatalf("first get: %q, %d left, redelivered %v", d.Body, d.MessageCount, d.Redelivered)
	}
	if err := d.Reject(true); err != nil {
		t.Fatal(err)
	}
	d = get(false)
	if string(d.Body) != "a" || !d.Redelivered || d.Headers["x-delivery-count"] != int64(1) {
		t.Fatalf("get after reject(requeue): %q, redelivered %v, headers %v", d.Body, d.Redelivered, d.Headers)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if d = get(true); string(d.Body) != "b" {
		t.Fatalf("no-ack get: %q", d.Body)
	}
	// c is held by a get not acknowledged yet: purge leaves it
	if d = get(false); string(d.Body) != "c" {
		t.Fatalf("get: %q", d.Body)
	}
	eventually(t, "counts on node 1", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qg", true, false, false, false, args)
			if err == nil && q.Messages != 2 {
				err = fmt.Errorf("node 1 counts %d ready, want 2", q.Messages)
			}
			return err
		})
	})
	if err := onChannel(ys[2], func(ch *amqp.Channel) error {
		n, err := ch.QueuePurge("qg", false)
		if err == nil && n != 2 {
			err = fmt.Errorf("purge-ok says %d, want 2", n)
		}
		return err
	}); err != nil {
		t.Fatalf("purge through node 3: %v", err)
	}
	eventually(t, "purge seen on node 1", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qg", true, false, false, false, args)
			if err == nil && q.Messages != 0 {
				err = fmt.Errorf("node 1 counts %d ready after the purge", q.Messages)
			}
			return err
		})
	})
	// the held message survives the purge: rejected with requeue, it is the only one left
	if err := d.Reject(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c back", func() error {
		d, ok, err := ch.Get("qg", false)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return errors.New("empty")
		}
		if string(d.Body) != "c" || d.MessageCount != 0 {
			t.Fatalf("after purge: %q, %d left", d.Body, d.MessageCount)
		}
		return d.Ack(false)
	})
	if _, ok, err := ch.Get("qg", false); err != nil || ok {
		t.Fatalf("get from the empty queue: ok %v, %v", ok, err)
	}
}

// TestServeClusterQuorumQueueTTL: messages of a quorum queue with x-message-ttl (and one
// with its own shorter expiration) expire and are dead-lettered (x-death reason expired) to
// a replicated dead-letter queue that every node counts alike, before and after the queue's
// leader is killed.
func TestServeClusterQuorumQueueTTL(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	qargs := amqp.Table{"x-queue-type": "quorum"}
	targs := amqp.Table{"x-queue-type": "quorum", "x-message-ttl": int32(300),
		"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "dead"}
	eventually(t, "declare", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			if err := ch.ExchangeDeclare("dlx", "direct", true, false, false, false, nil); err != nil {
				return err
			}
			if _, err := ch.QueueDeclare("dlq", true, false, false, false, qargs); err != nil {
				return err
			}
			if err := ch.QueueBind("dlq", "dead", "dlx", false, nil); err != nil {
				return err
			}
			_, err := ch.QueueDeclare("qttl", true, false, false, false, targs)
			return err
		})
	})
	counts := func(want int, nodes ...int) {
		t.Helper()
		for _, i := range nodes {
			eventually(t, fmt.Sprintf("counts on node %d", i+1), func() error {
				return onChannel(ys[i], func(ch *amqp.Channel) error {
					q, err := ch.QueueDeclarePassive("qttl", true, false, false, false, targs)
					if err != nil {
						return err
					}
					d, err := ch.QueueDeclarePassive("dlq", true, false, false, false, qargs)
					if err == nil && (q.Messages != 0 || d.Messages != want) {
						err = fmt.Errorf("qttl %d ready, dlq %d, want 0 and %d", q.Messages, d.Messages, want)
					}
					return err
				})
			})
		}
	}
	publishConfirmed(t, ys[1], "qttl", "a", "b")
	eventually(t, "publish with expiration", func() error {
		return onChannel(ys[1], func(ch *amqp.Channel) error {
			return ch.Publish("", "qttl", false, false, amqp.Publishing{Body: []byte("c"), Expiration: "50"})
		})
	})
	counts(3, 0, 1, 2)
	if err := onChannel(ys[2], func(ch *amqp.Channel) error {
		d, ok, err := ch.Get("dlq", true)
		if err == nil && !ok {
			err = errors.New("dlq empty")
		}
		if err != nil {
			return err
		}
		deaths, _ := d.Headers["x-death"].([]any)
		if len(deaths) == 0 {
			return fmt.Errorf("no x-death in %v", d.Headers)
		}
		if r := deaths[0].(amqp.Table)["reason"]; r != "expired" {
			return fmt.Errorf("x-death reason %v", r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var leader uint64
	eventually(t, "qttl's leader", func() error {
		if leader = quorumLeader(ys[0], "qttl"); leader == 0 {
			return errors.New("no leader known")
		}
		return nil
	})
	ys[leader-1].Kill()
	a, b := int(leader%3), int((leader+1)%3) // the survivors' indexes
	publishConfirmed(t, ys[a], "qttl", "d", "e", "f")
	counts(5, a, b)
}

// TestServeClusterQuorumQueueSingleActive: with x-single-active-consumer, of two consumers
// on two nodes only the first gets deliveries; once it is cancelled, the other takes over.
func TestServeClusterQuorumQueueSingleActive(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	args := amqp.Table{"x-queue-type": "quorum", "x-single-active-consumer": true}
	eventually(t, "declare qs", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qs", true, false, false, false, args)
			return err
		})
	})
	consume := func(y int, tag string) (*amqp.Channel, <-chan amqp.Delivery) {
		t.Helper()
		eventually(t, "qs on the consumer's node", func() error {
			return onChannel(ys[y], func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclarePassive("qs", true, false, false, false, args)
				return err
			})
		})
		conn, err := amqp.Dial(amqpURL(ys[y]))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		ds, err := ch.Consume("qs", tag, true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ch, ds
	}
	ch1, first := consume(1, "first")
	eventually(t, "first attached", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qs", true, false, false, false, args)
			if err == nil && q.Consumers != 1 {
				err = fmt.Errorf("%d consumers", q.Consumers)
			}
			return err
		})
	})
	_, second := consume(2, "second")
	eventually(t, "second attached", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qs", true, false, false, false, args)
			if err == nil && q.Consumers != 2 {
				err = fmt.Errorf("%d consumers", q.Consumers)
			}
			return err
		})
	})
	publishConfirmed(t, ys[0], "qs", "a", "b", "c")
	for _, want := range []string{"a", "b", "c"} {
		select {
		case d := <-first:
			if string(d.Body) != want {
				t.Fatalf("first got %q, want %q", d.Body, want)
			}
		case d := <-second:
			t.Fatalf("the second consumer got %q while the first is active", d.Body)
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
		}
	}
	if err := ch1.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, ys[0], "qs", "d")
	select {
	case d := <-second:
		if string(d.Body) != "d" {
			t.Fatalf("second got %q", d.Body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the second consumer did not take over")
	}
}
