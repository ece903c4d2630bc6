package main

import (
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
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
