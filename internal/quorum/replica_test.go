package quorum

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/queue"
)

// fakeConsumer takes deliveries up to its room, like a channel with a prefetch.
type fakeConsumer struct {
	mu       sync.Mutex
	room     int
	got      chan queue.Delivery
	refusals int
}

func (c *fakeConsumer) TryDeliver(d queue.Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.room == 0 {
		c.refusals++
		return false
	}
	c.room--
	c.got <- d
	return true
}

func (c *fakeConsumer) Cancelled(*queue.Queue, string) {}

func (c *fakeConsumer) free() {
	c.mu.Lock()
	c.room++
	c.mu.Unlock()
}

// TestReplicaQueue runs the queue engine's face of a quorum queue on three hosts: publishes
// through node 1's queue (the Waiter returns once committed), a consumer on node 3's queue
// with a prefetch of 5 acks everything, one message is requeued and comes back redelivered
// with its delivery count.
func TestReplicaQueue(t *testing.T) {
	lns, peers := map[uint64]net.Listener{}, map[uint64]string{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	qs := map[uint64]*queue.Queue{}
	for id, ln := range lns {
		h, err := cluster.Open(cluster.Config{NodeID: id, Dir: t.TempDir(), Listener: ln, Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		r := NewReplica("q", id, NoLimits, nil, nil)
		g, err := h.CreateGroup(7, r.StateMachine(), []uint64{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		r.SetGroup(g, h.PeerAlive)
		t.Cleanup(func() { h.Close(); r.Close() })
		qs[id] = queue.New("q", queue.Options{Durable: true, Replica: r})
	}
	const n = 50
	for i := range n {
		w, err := qs[1].Publish(&queue.Message{Exchange: "x", RoutingKey: "q", Body: fmt.Appendf(nil, "m%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = w.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := &fakeConsumer{room: 5, got: make(chan queue.Delivery, n*2)}
	if err := qs[3].Consume(queue.ConsumerSpec{Tag: "t", Consumer: c, Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	requeued := false
	for len(seen) < n {
		select {
		case d := <-c.got:
			c.free()
			if !requeued {
				requeued = true
				qs[3].Requeue(d.ID)
				continue
			}
			if string(d.Message.Body) == "m0" && (!d.Redelivered || d.DeliveryCount != 1) {
				t.Fatalf("m0 back with redelivered=%v count=%d", d.Redelivered, d.DeliveryCount)
			}
			seen[string(d.Message.Body)] = true
			qs[3].Ack(d.ID)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d consumed", len(seen), n)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, unacked, consumers := qs[2].Counts()
		if ready == 0 && unacked == 0 && consumers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 2 counts %d %d %d", ready, unacked, consumers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
