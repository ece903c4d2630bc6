package broker

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// startAMQPNodes is startNodesWith with every node's AMQP listener on 127.0.0.1:0.
func startAMQPNodes(t *testing.T, n int, limits *[3]uint64) *testNodes {
	return startNodesConfig(t, n, limits, func(_ int, cfg *Config) { cfg.AMQPListen = "127.0.0.1:0" })
}

// amqpDo runs f on a channel of a fresh connection to node i, closed afterwards.
func (c *testNodes) amqpDo(i int, f func(ch *amqp.Channel) error) error {
	conn, err := amqp.Dial("amqp://guest:guest@" + c.broker[i].Addr("amqp").String() + "/")
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

// quorumGroups are the Raft groups of node i's quorum queue replicas.
func (c *testNodes) quorumGroups(i int) []uint64 {
	qc := c.broker[i].quorum
	qc.mu.Lock()
	defer qc.mu.Unlock()
	return slices.Sorted(maps.Keys(qc.replicas))
}

func publishBodies(ch *amqp.Channel, queue string, bodies ...string) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	for _, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte(b)})
		if err != nil {
			return err
		}
		if !dc.Wait() {
			return fmt.Errorf("%s nacked", b)
		}
	}
	return nil
}

// readyOn is the ready count of quorum queue name as node i's passive declare reports it.
func (c *testNodes) readyOn(i int, name string) (int, error) {
	var n int
	err := c.amqpDo(i, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		n = q.Messages
		return err
	})
	return n, err
}

// TestClusterQuorumQueueDeletedStaysDeleted: a quorum queue deleted (and declared again,
// with a new message) while node 3 is down, the topology group's log compacted meanwhile:
// restarted, node 3 replays the old queue from its own log, then the leader's snapshot
// detaches it. The old queue does not come back, its Raft group and snapshot file are gone,
// and node 3 serves the new queue, which holds the new message only. A restarted node that
// applied the delete itself (node 1) replays it from its log the same way.
func TestClusterQuorumQueueDeletedStaysDeleted(t *testing.T) {
	t.Parallel()
	c := startAMQPNodes(t, 3, &[3]uint64{20, 5, 400})
	qargs := amqp.Table{"x-queue-type": "quorum"}
	retry(t, func() error {
		return c.amqpDo(0, func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("qr", true, false, false, false, qargs)
			return err
		})
	})
	old := make([]string, 30) // enough entries for the old queue's group to snapshot
	for i := range old {
		old[i] = fmt.Sprint("old-", i)
	}
	retry(t, func() error {
		return c.amqpDo(0, func(ch *amqp.Channel) error { return publishBodies(ch, "qr", old...) })
	})
	retry(t, func() error {
		if n, err := c.readyOn(2, "qr"); err != nil || n != len(old) {
			return fmt.Errorf("node 3 counts %d ready (%v)", n, err)
		}
		return nil
	})
	oldGroups := c.quorumGroups(2)
	if len(oldGroups) != 1 {
		t.Fatalf("node 3 has the groups %v, want one", oldGroups)
	}
	snapFile := filepath.Join(c.broker[2].layout.Raft(), "snap", fmt.Sprintf("%020d.snap", oldGroups[0]))
	retry(t, func() error { _, err := os.Stat(snapFile); return err })

	c.stop(2)
	retry(t, func() error {
		return c.amqpDo(0, func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete("qr", false, false, false)
			return err
		})
	})
	retry(t, func() error {
		return c.amqpDo(1, func(ch *amqp.Channel) error {
			if _, err := ch.QueueDeclare("qr", true, false, false, false, qargs); err != nil {
				return err
			}
			return publishBodies(ch, "qr", "new")
		})
	})
	// more topology entries than the group keeps: node 3 will need the leader's snapshot
	retry(t, func() error {
		return c.amqpDo(0, func(ch *amqp.Channel) error {
			for i := range 30 {
				if err := ch.QueueBind("qr", fmt.Sprint("k", i), "amq.direct", false, nil); err != nil {
					return err
				}
			}
			return nil
		})
	})

	c.start(2)
	retry(t, func() error {
		if n, err := c.readyOn(2, "qr"); err != nil || n != 1 {
			return fmt.Errorf("node 3 counts %d ready (%v), want the new message only", n, err)
		}
		return nil
	})
	if g := c.broker[2].raft.Group(oldGroups[0]); g != nil {
		t.Fatal("node 3 still runs the deleted queue's group")
	}
	if gs := c.quorumGroups(2); len(gs) != 1 || gs[0] == oldGroups[0] {
		t.Fatalf("node 3 has the groups %v (the deleted queue's: %d)", gs, oldGroups[0])
	}
	retry(t, func() error {
		if _, err := os.Stat(snapFile); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("the deleted queue's snapshot file: %v", err)
		}
		return nil
	})
	consumeOne := func(i int) {
		t.Helper()
		if err := c.amqpDo(i, func(ch *amqp.Channel) error {
			d, ok, err := ch.Get("qr", false)
			if err != nil || !ok || string(d.Body) != "new" {
				return fmt.Errorf("get: ok %v, %q, %v", ok, d.Body, err)
			}
			return ch.Reject(d.DeliveryTag, true)
		}); err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	consumeOne(2)

	// node 1 restarted replays the delete and the new declaration from its own log
	c.stop(0)
	c.start(0)
	retry(t, func() error {
		if n, err := c.readyOn(0, "qr"); err != nil || n != 1 {
			return fmt.Errorf("node 1 counts %d ready (%v), want 1", n, err)
		}
		return nil
	})
	if gs := c.quorumGroups(0); len(gs) != 1 || gs[0] == oldGroups[0] || c.broker[0].raft.Group(oldGroups[0]) != nil {
		t.Fatalf("node 1 has the groups %v (the deleted queue's: %d)", gs, oldGroups[0])
	}
	consumeOne(0)
}
