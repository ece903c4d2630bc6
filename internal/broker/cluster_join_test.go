package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterRefusesSingleNodeData: a data directory a single node wrote (topics, no raft/)
// started as a cluster member is refused with an error naming the migration, and loses
// nothing: started again as a single node, it serves every record it held.
func TestClusterRefusesSingleNodeData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kafkaAddr := freeAddr(t)
	single := func() *Broker {
		t.Helper()
		cfg := DefaultConfig()
		cfg.DataDir, cfg.KafkaListen = dir, kafkaAddr
		cfg.AMQPListen, cfg.HTTPListen = "", ""
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := single()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.DefaultProduceTopic("kept"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 500
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "r-%d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.DataDir, cfg.KafkaListen = dir, kafkaAddr
	cfg.AMQPListen, cfg.HTTPListen = "", ""
	cfg.NodeID = 1
	cfg.Peers = fmt.Sprintf("1=%s,2=%s,3=%s", freeAddr(t), freeAddr(t), freeAddr(t))
	cb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = cb.Start()
	if serr := cb.Shutdown(context.Background()); serr != nil {
		t.Fatal(serr)
	}
	if err == nil {
		t.Fatal("a single node's data directory started as a cluster member")
	}
	if !strings.Contains(err.Error(), "Migrating a single node") || !strings.Contains(err.Error(), "kept") || !strings.Contains(err.Error(), "--adopt-single-node-data") {
		t.Fatalf("error does not name the topic and the migration: %v", err)
	}
	t.Log(err)

	b = single()
	defer b.Shutdown(context.Background())
	tp, ok := b.streams.Topic("kept")
	if !ok {
		t.Fatal("topic kept gone")
	}
	if end := tp.Partition(0).HighWatermark(); end != n {
		t.Fatalf("after the refused start the log ends at %d, want %d", end, n)
	}
}
