package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// queueStatus is the management API's status for queue name on y: 200 while it exists,
// 404 once it is gone (a GET is not a use of the queue).
func queueStatus(y *harness.Yard, name string) (int, error) {
	req, _ := http.NewRequest("GET", "http://"+y.HTTPAddr+"/api/queues/%2F/"+name, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitQueueStatus waits until every node answers status for queue name.
func waitQueueStatus(t *testing.T, ys []*harness.Yard, name string, status int) {
	t.Helper()
	for i, y := range ys {
		eventually(t, fmt.Sprintf("%s answers %d on node %d", name, status, i+1), func() error {
			got, err := queueStatus(y, name)
			if err == nil && got != status {
				err = fmt.Errorf("status %d", got)
			}
			return err
		})
	}
}

// requireQueue fails unless queue name exists on every node.
func requireQueue(t *testing.T, ys []*harness.Yard, name, why string) {
	t.Helper()
	for i, y := range ys {
		if got, err := queueStatus(y, name); err != nil || got != http.StatusOK {
			t.Fatalf("%s: %s is gone from node %d (%d, %v)", why, name, i+1, got, err)
		}
	}
}

// TestServeClusterQuorumQueueExpires: x-expires on a replicated quorum queue. A
// non-positive value is refused as RabbitMQ refuses it. A queue is kept while it has a
// consumer (of any node), while basic.get is used on it and while it is redeclared, each
// for longer than its x-expires (a queue declared with the same x-expires alongside expires
// meanwhile, which is how the test knows the time passed); left unused, it is deleted from
// every node.
func TestServeClusterQuorumQueueExpires(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	for _, c := range []struct {
		v    any
		want string
	}{{0, "{value_zero,0}"}, {-5, "{value_negative,-5}"}} {
		var err error
		eventually(t, "declare with a bad x-expires", func() error {
			err = onChannel(ys[0], func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare("qbad", true, false, false, false, amqp.Table{"x-queue-type": "quorum", "x-expires": c.v})
				return err
			})
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.InternalError {
				return err // no leader yet
			}
			return nil
		})
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || !strings.Contains(ae.Reason, "invalid arg 'x-expires'") || !strings.Contains(ae.Reason, c.want) {
			t.Fatalf("x-expires %v: %v, want 406 with %s", c.v, err, c.want)
		}
	}

	const expires = 2000
	args := amqp.Table{"x-queue-type": "quorum", "x-expires": int32(expires)}
	declare := func(y *harness.Yard, name string) {
		t.Helper()
		eventually(t, "declare "+name, func() error {
			return onChannel(y, func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare(name, true, false, false, false, args)
				return err
			})
		})
	}
	declare(ys[0], "qe")
	publishConfirmed(t, ys[0], "qe", "a", "b")

	// a consumer on node 2 keeps it
	conn, err := amqp.Dial(amqpURL(ys[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := cch.Consume("qe", "c", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-ds:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery")
	}
	declare(ys[0], "qe-1")
	waitQueueStatus(t, ys, "qe-1", http.StatusNotFound)
	requireQueue(t, ys, "qe", "with a consumer")
	if err := cch.Close(); err != nil { // its message returns; unused from now on
		t.Fatal(err)
	}

	// basic.get through node 3, then redeclarations through node 1, keep it
	use := func(what string, f func() error) {
		t.Helper()
		sentinel := "qe-" + what
		declare(ys[0], sentinel)
		for {
			if err := f(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if st, err := queueStatus(ys[0], sentinel); err == nil && st == http.StatusNotFound {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		waitQueueStatus(t, ys, sentinel, http.StatusNotFound)
		requireQueue(t, ys, "qe", "used by "+what)
	}
	use("get", func() error {
		return onChannel(ys[2], func(ch *amqp.Channel) error {
			d, ok, err := ch.Get("qe", false)
			if err != nil || !ok {
				return fmt.Errorf("get: ok %v, %v", ok, err)
			}
			return d.Nack(false, true)
		})
	})
	use("redeclare", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qe", true, false, false, false, args)
			return err
		})
	})

	// unused, it goes from every node
	waitQueueStatus(t, ys, "qe", http.StatusNotFound)
	err = onChannel(ys[2], func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclarePassive("qe", true, false, false, false, args)
		return err
	})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("passive declare of the expired queue: %v", err)
	}
	// declared again, it is a new, empty queue
	declare(ys[1], "qe")
	eventually(t, "the new qe empty", func() error {
		return onChannel(ys[2], func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive("qe", true, false, false, false, args)
			if err == nil && q.Messages != 0 {
				err = fmt.Errorf("%d messages", q.Messages)
			}
			return err
		})
	})
}

// TestServeClusterQuorumQueueDeleteConditions: queue.delete's if-empty and if-unused, and
// the message count of delete-ok, are decided by the queue's replicated state where the
// delete stands in its log, not by the asking node's replica: asked through a follower
// right after a message was confirmed (or a consumer got a delivery) through the leader, the
// answer is 406 PRECONDITION_FAILED with RabbitMQ's text, as through the leader.
func TestServeClusterQuorumQueueDeleteConditions(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	args := amqp.Table{"x-queue-type": "quorum"}
	for round := range 3 {
		name := fmt.Sprint("qdc-", round)
		eventually(t, "declare "+name, func() error {
			return onChannel(ys[0], func(ch *amqp.Channel) error {
				_, err := ch.QueueDeclare(name, true, false, false, false, args)
				return err
			})
		})
		var leader uint64
		eventually(t, name+"'s leader", func() error {
			if leader = quorumLeader(ys[0], name); leader == 0 {
				return errors.New("no leader known")
			}
			return nil
		})
		dial := func(y *harness.Yard) *amqp.Connection {
			t.Helper()
			conn, err := amqp.Dial(amqpURL(y))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			return conn
		}
		lconn, fconn := dial(ys[leader-1]), dial(ys[leader%3])
		channel := func(conn *amqp.Connection) *amqp.Channel {
			t.Helper()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}
		pub := channel(lconn)
		if err := pub.Confirm(false); err != nil {
			t.Fatal(err)
		}
		publish := func(body string) {
			t.Helper()
			dc, err := pub.PublishWithDeferredConfirm("", name, false, false, amqp.Publishing{Body: []byte(body)})
			if err != nil || !dc.Wait() {
				t.Fatalf("publish %s: %v", body, err)
			}
		}
		refused := func(ifUnused, ifEmpty bool, want string) {
			t.Helper()
			_, err := channel(fconn).QueueDelete(name, ifUnused, ifEmpty, false)
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed || !strings.HasSuffix(ae.Reason, fmt.Sprintf("queue '%s' in vhost '/' %s", name, want)) {
				t.Fatalf("round %d: delete if-unused=%v if-empty=%v through a follower: %v, want 406 %s", round, ifUnused, ifEmpty, err, want)
			}
		}
		publish("m1")
		refused(false, true, "not empty")

		cch := channel(lconn)
		if err := cch.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		ds, err := cch.Consume(name, "c", false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ds:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
		}
		refused(true, false, "in use")

		publish("m2") // ready; m1 is held by the consumer
		n, err := channel(fconn).QueueDelete(name, false, false, false)
		if err != nil || n != 1 {
			t.Fatalf("round %d: delete through a follower: delete-ok counts %d, %v; want 1", round, n, err)
		}
		waitQueueStatus(t, ys, name, http.StatusNotFound)
	}
}
