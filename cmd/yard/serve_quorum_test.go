package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

func amqpURL(y *harness.Yard) string { return "amqp://guest:guest@" + y.AMQPAddr + "/" }

// onChannel runs f on a channel of a fresh connection to y, closed afterwards.
func onChannel(y *harness.Yard, f func(ch *amqp.Channel) error) error {
	conn, err := amqp.Dial(amqpURL(y))
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	return f(ch)
}

// quorumLeader asks y's management API which node leads the quorum queue (0: none known).
func quorumLeader(y *harness.Yard, queue string) uint64 {
	req, _ := http.NewRequest("GET", "http://"+y.HTTPAddr+"/api/queues/%2F/"+queue, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var q struct {
		Leader uint64 `json:"leader_node_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&q) != nil {
		return 0
	}
	return q.Leader
}

// TestServeClusterQuorumQueue: a quorum queue declared through node 1 of three processes
// exists on every node; amqp091-go publishes to it with confirms through one node and
// consumes through another; its leader is killed with SIGKILL mid-stream. Every confirmed
// message is consumed; the messages a consumer held unacknowledged when it lost its channel
// (its node killed, or its connection closed) come back with the redelivered flag; the
// queue goes on under a new leader.
func TestServeClusterQuorumQueue(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	args := amqp.Table{"x-queue-type": "quorum"}
	eventually(t, "declare qq", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qq", true, false, false, false, args)
			return err
		})
	})
	eventually(t, "qq on node 2", func() error {
		return onChannel(ys[1], func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive("qq", true, false, false, false, args)
			return err
		})
	})

	confirmed := map[string]bool{}
	publishTo := func(y *harness.Yard, exchange, key, prefix string, n int) {
		t.Helper()
		eventually(t, "publish "+prefix, func() error {
			return onChannel(y, func(ch *amqp.Channel) error {
				if err := ch.Confirm(false); err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for i := range n {
					body := fmt.Sprintf("%s-%d", prefix, i)
					if confirmed[body] {
						continue
					}
					dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{Body: []byte(body)})
					if err != nil {
						return err
					}
					ok, err := dc.WaitContext(ctx)
					if err != nil {
						return err
					}
					if !ok {
						return fmt.Errorf("%s nacked", body)
					}
					confirmed[body] = true
				}
				return nil
			})
		})
	}
	publish := func(y *harness.Yard, prefix string, n int) { publishTo(y, "", "qq", prefix, n) }
	// An exchange and a binding to qq declared through node 1 route on node 3 too.
	eventually(t, "bind qq", func() error {
		return onChannel(ys[0], func(ch *amqp.Channel) error {
			if err := ch.ExchangeDeclare("orders", "direct", true, false, false, false, nil); err != nil {
				return err
			}
			return ch.QueueBind("qq", "eu", "orders", false, nil)
		})
	})
	// node 3 routes through the binding once it applied it (before, a message published
	// there would be unroutable: confirmed, and dropped)
	eventually(t, "the binding on node 3", func() error {
		req, _ := http.NewRequest("GET", "http://"+ys[2].HTTPAddr+"/api/bindings/%2F/e/orders/q/qq", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var bs []struct {
			Key string `json:"routing_key"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&bs); err != nil {
			return err
		}
		if len(bs) != 1 || bs[0].Key != "eu" {
			return fmt.Errorf("bindings %v", bs)
		}
		return nil
	})
	publishTo(ys[2], "orders", "eu", "routed", 20)
	publish(ys[0], "before", 200)

	// A consumer on node 2 acks 100 messages and holds the next 10 unacknowledged.
	consumerNode := 1 // index in ys
	cconn, err := amqp.Dial(amqpURL(ys[consumerNode]))
	if err != nil {
		t.Fatal(err)
	}
	defer cconn.Close()
	cch, err := cconn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := cch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := cch.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	next := func(ds <-chan amqp.Delivery) amqp.Delivery {
		t.Helper()
		select {
		case d, ok := <-ds:
			if !ok {
				t.Fatal("consumer closed")
			}
			seen[string(d.Body)]++
			return d
		case <-time.After(30 * time.Second):
			t.Fatalf("no delivery; %d distinct seen", len(seen))
		}
		panic("unreachable")
	}
	for range 100 {
		d := next(deliveries)
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	held := map[string]bool{}
	for range 10 {
		held[string(next(deliveries).Body)] = true
	}

	var leader uint64
	eventually(t, "qq's leader", func() error {
		if leader = quorumLeader(ys[consumerNode], "qq"); leader == 0 {
			return fmt.Errorf("no leader known")
		}
		return nil
	})
	// A publisher on a node that survives keeps publishing with confirms while the leader
	// is killed.
	survivor := ys[leader%3]
	var mu sync.Mutex
	during := map[string]bool{}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		i := 0
		for {
			conn, err := amqp.Dial(amqpURL(survivor))
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			ch, err := conn.Channel()
			if err == nil {
				err = ch.Confirm(false)
			}
			for err == nil {
				select {
				case <-stop:
					conn.Close()
					return
				default:
				}
				body := fmt.Sprintf("during-%d", i)
				var dc *amqp.DeferredConfirmation
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if dc, err = ch.PublishWithDeferredConfirmWithContext(ctx, "", "qq", false, false, amqp.Publishing{Body: []byte(body)}); err == nil {
					var ok bool
					if ok, err = dc.WaitContext(ctx); err == nil && ok {
						mu.Lock()
						during[body] = true
						mu.Unlock()
					}
				}
				cancel()
				i++ // a nacked or unanswered message may or may not be there: not counted
			}
			conn.Close()
		}
	}()
	confirmedDuring := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(during)
	}
	eventually(t, "publishing under way", func() error {
		if n := confirmedDuring(); n < 50 {
			return fmt.Errorf("%d confirmed", n)
		}
		return nil
	})
	start := time.Now()
	ys[leader-1].Kill()
	if int(leader-1) != consumerNode {
		cconn.Close() // its held messages return, as when its node dies
	}
	newLeader := uint64(0)
	eventually(t, "a new leader", func() error {
		if newLeader = quorumLeader(survivor, "qq"); newLeader == 0 || newLeader == leader {
			return fmt.Errorf("leader %d", newLeader)
		}
		return nil
	})
	t.Logf("node %d (leading qq) killed; node %d leads %v later", leader, newLeader, time.Since(start))
	atKill := confirmedDuring()
	eventually(t, "publishing after the kill", func() error {
		if n := confirmedDuring(); n < atKill+50 {
			return fmt.Errorf("%d confirmed since the kill", n-atKill)
		}
		return nil
	})
	close(stop)
	<-stopped
	for b := range during {
		confirmed[b] = true
	}
	publish(survivor, "after", 200)

	// A new consumer on a survivor gets the rest; the held ones come back redelivered.
	conn2, err := amqp.Dial(amqpURL(survivor))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	ch2, err := conn2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	ds2, err := ch2.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	redelivered := map[string]bool{}
	missing := func() int {
		n := 0
		for b := range confirmed {
			if seen[b] == 0 {
				n++
			}
		}
		return n
	}
	for missing() > 0 || len(redelivered) < len(held) {
		d := next(ds2)
		if d.Redelivered {
			redelivered[string(d.Body)] = true
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	for b := range held {
		if !redelivered[b] {
			t.Errorf("%s was held unacknowledged by a lost consumer but not redelivered (redelivered: %v)", b, redelivered)
		}
	}
	dups := 0
	for _, n := range seen {
		if n > 1 {
			dups++
		}
	}
	t.Logf("%d confirmed, %d distinct consumed, %d consumed more than once (the %d held)", len(confirmed), len(seen), dups, len(held))
}
