package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// startCluster runs n `yard serve --node-id N --cluster-listen H:P --peers ...` processes.
func startCluster(t *testing.T, n int) []*harness.Yard {
	t.Helper()
	addrs := make([]string, n)
	var peers []string
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	ys := make([]*harness.Yard, n)
	for i := range ys {
		ys[i] = harness.Start(t, harness.WithArgs("--node-id", fmt.Sprint(i+1),
			"--cluster-listen", addrs[i], "--peers", strings.Join(peers, ",")))
	}
	return ys
}

func adminOf(t *testing.T, y *harness.Yard) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// eventually retries f (a cluster may have no leader yet) until it succeeds.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// topicIDOn is topic's id as node y's Metadata reports it.
func topicIDOn(t *testing.T, y *harness.Yard, topic string) (kadm.TopicID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := adminOf(t, y).ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicID{}, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("topic %q not on %s: %v", topic, y.KafkaAddr, d.Err)
	}
	return d.ID, nil
}

// TestServeCluster starts three processes with the cluster flags: a topic created through one
// node exists on every node with one id; a node killed with SIGKILL comes back from its WAL
// and learns what it missed.
func TestServeCluster(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	create := func(y *harness.Yard, topic string) {
		eventually(t, "create "+topic, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, err := adminOf(t, y).CreateTopic(ctx, 2, -1, nil, topic)
			if err == nil {
				err = r.Err
			}
			return err
		})
	}
	sameEverywhere := func(topic string, nodes ...*harness.Yard) {
		var want kadm.TopicID
		eventually(t, topic+" on every node", func() error {
			for i, y := range nodes {
				id, err := topicIDOn(t, y, topic)
				if err != nil {
					return err
				}
				if i == 0 {
					want = id
				} else if id != want {
					return fmt.Errorf("node %s has id %v, want %v", y.KafkaAddr, id, want)
				}
			}
			return nil
		})
	}
	create(ys[1], "orders")
	sameEverywhere("orders", ys...)
	ys[2].Kill()
	create(ys[0], "while-down")
	ys[2].Restart()
	sameEverywhere("while-down", ys...)
	sameEverywhere("orders", ys...)
}
