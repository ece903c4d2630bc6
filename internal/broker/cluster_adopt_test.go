package broker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/auth"
)

// singleNodeData runs a single node on dir, creates topic "kept" (3 partitions, a topic
// config), produces n records with an idempotent producer and commits group "g"'s offsets,
// then stops the node. It returns every record by partition (its offset is its index) and the
// commits.
func singleNodeData(t *testing.T, dir string, n int) (map[int32][]string, map[int32]int64) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.KafkaListen = dir, freeAddr(t)
	cfg.AMQPListen, cfg.HTTPListen = "", ""
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaListen), kgo.DefaultProduceTopic("kept"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": new("86400001")}, "kept"); err != nil {
		t.Fatal(err)
	}
	recs := map[int32][]string{}
	for i := range n {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k-%d", i%7), Value: fmt.Appendf(nil, "r-%d", i)}
		res := cl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		got := res[0].Record
		if got.Offset != int64(len(recs[got.Partition])) {
			t.Fatalf("record %d at %d-%d, want offset %d", i, got.Partition, got.Offset, len(recs[got.Partition]))
		}
		recs[got.Partition] = append(recs[got.Partition], string(got.Value))
	}
	commits := map[int32]int64{}
	offs := kadm.Offsets{}
	for p, rs := range recs {
		commits[p] = int64(len(rs) / 2)
		offs.Add(kadm.Offset{Topic: "kept", Partition: p, At: commits[p], LeaderEpoch: -1})
	}
	if r, err := adm.CommitOffsets(ctx, "g", offs); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	if r, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.ms", Value: new("7200001")}}); err != nil || r[0].Err != nil {
		t.Fatal(err, r)
	}
	up := kadm.UpsertSCRAM{User: "migrated", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "secret"}
	if r, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{up}); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	cl.Close()
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return recs, commits
}

// checkRecords reads every partition of "kept" through seed from offset 0 and compares it
// with recs (offsets kept), and group g's committed offsets with commits.
func checkRecords(t *testing.T, seed string, recs map[int32][]string, commits map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	parts := map[int32]kgo.Offset{}
	want := 0
	for p, rs := range recs {
		parts[p] = kgo.NewOffset().At(0)
		want += len(rs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"kept": parts}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := 0
	for seen < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records through %s", seen, want, seed)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			rs := recs[r.Partition]
			if r.Offset >= int64(len(rs)) {
				return // produced after the adoption
			}
			if string(r.Value) != rs[r.Offset] {
				t.Fatalf("kept-%d at %d is %q, want %q", r.Partition, r.Offset, r.Value, rs[r.Offset])
			}
			seen++
		})
	}
	adm := kadm.NewClient(cl)
	retry(t, func() error {
		got, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			return err
		}
		if err := got.Error(); err != nil {
			return err
		}
		for p, at := range commits {
			o, ok := got.Lookup("kept", p)
			if !ok || o.At != at {
				return fmt.Errorf("group g's offset of kept-%d: %v (found %v), want %d", p, o.At, ok, at)
			}
		}
		return nil
	})
}

// TestClusterAdoptsSingleNodeData: a single node's data directory started as node 1 of a new
// 3-node cluster with --adopt-single-node-data becomes the cluster's: the topic with its id and
// configs, every record at its offset (read through node 1, then through node 2 with node 1
// stopped: the other replicas fetched the logs), group g's committed offsets, and new records
// continue the offsets.
func TestClusterAdoptsSingleNodeData(t *testing.T) {
	t.Parallel()
	c, recs, commits := adoptedCluster(t)
	checkRecords(t, c.kafka[0], recs, commits)
	waitReplicas(t, c, recs, 1, 2)
	waitInSync(t, c)
	c.stop(0)
	checkRecords(t, c.kafka[1], recs, commits)
	// A record produced now continues its partition's offsets.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[1]), kgo.DefaultProduceTopic("kept"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("after")})
	if err := res.FirstErr(); err != nil {
		for i := 1; i < 3; i++ {
			tp, _ := c.broker[i].streams.Topic("kept")
			p := tp.Partition(0)
			t.Logf("node %d: kept-0 leader %d, hw %d, in sync %v", i+1, c.broker[i].streams.Node().Leader(p), p.HighWatermark(), c.broker[i].streams.Node().ISR(p))
		}
		t.Fatal(err)
	}
	if got := res[0].Record.Offset; got != int64(len(recs[0])) {
		t.Fatalf("a record produced after the adoption got offset %d, want %d", got, len(recs[0]))
	}
}

// TestClusterAdoptingNodeWiped: the adopting node restarted with an empty data directory after
// the adoption does not take its partitions' first state for its own (its log no longer holds
// it): it fetches the logs from the others like any replica.
func TestClusterAdoptingNodeWiped(t *testing.T) {
	t.Parallel()
	c, recs, _ := adoptedCluster(t)
	waitReplicas(t, c, recs, 1, 2)
	c.stop(0)
	if err := os.RemoveAll(c.dirs[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(c.dirs[0], 0o700); err != nil {
		t.Fatal(err)
	}
	c.start(0)
	waitReplicas(t, c, recs, 0)
	// Node 1's logs are node 2's, batch for batch.
	logBytes := func(i int, p int32) []byte {
		tp, _ := c.broker[i].streams.Topic("kept")
		rr, err := tp.Partition(p).Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Release()
		b, err := rr.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for p := range recs {
		if a, b := logBytes(0, p), logBytes(1, p); !bytes.Equal(a, b) || len(a) == 0 {
			t.Fatalf("kept-%d: node 1's log (%d bytes) is not node 2's (%d bytes)", p, len(a), len(b))
		}
	}
}

// adoptedCluster makes a single node's data directory (singleNodeData) node 1 of a new
// 3-node cluster with --adopt-single-node-data, and checks that the topic, its config and
// node 1's SCRAM user reached every node.
func adoptedCluster(t *testing.T) (*testNodes, map[int32][]string, map[int32]int64) {
	t.Helper()
	dir := t.TempDir()
	recs, commits := singleNodeData(t, dir, 300)
	c := &testNodes{t: t, broker: make([]*Broker, 3), config: func(i int, cfg *Config) {
		cfg.AdoptSingleNodeData = i == 0
		if d := os.Getenv("ADOPT_DEBUG_LOG"); d != "" {
			f, _ := os.OpenFile(fmt.Sprintf("%s/%s-node%d.log", d, t.Name(), i+1), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			cfg.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}}
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, freeAddr(t)))
		c.kafka = append(c.kafka, freeAddr(t))
	}
	c.dirs = []string{dir, t.TempDir(), t.TempDir()}
	c.peers = strings.Join(peers, ",")
	t.Cleanup(func() {
		for _, b := range c.broker {
			if b != nil {
				b.Shutdown(context.Background())
			}
		}
	})
	// Node 1 waits for a quorum to adopt its data: the others start first.
	c.start(1)
	c.start(2)
	c.start(0)
	if _, err := os.Stat(c.broker[0].layout.Adopt()); err == nil {
		t.Fatal("adopt.json left after the adoption")
	}
	c.waitTopic("kept", "retention.ms", "86400001")
	for i, b := range c.broker {
		if v := brokerConfig(b, "log.retention.ms"); v != "7200001" {
			t.Fatalf("node %d: broker config log.retention.ms = %q, want node 1's 7200001", i+1, v)
		}
	}
	// Node 1's SCRAM user is the cluster's, whichever node seeded the users first.
	retry(t, func() error {
		for i, b := range c.broker {
			if _, ok := b.users.Credential("migrated", auth.ScramSHA256); !ok {
				return fmt.Errorf("node %d has no SCRAM credential of user migrated", i+1)
			}
		}
		return nil
	})
	return c, recs, commits
}

func brokerConfig(b *Broker, key string) string {
	for _, c := range b.streams.BrokerConfigs() {
		if c.Name == key {
			return c.Value
		}
	}
	return ""
}

// waitInSync waits until every partition of every topic has all 3 replicas in sync (its
// leader's view): node 1 is no longer the only one holding an adopted log.
func waitInSync(t *testing.T, c *testNodes) {
	t.Helper()
	retry(t, func() error {
		for _, tp := range c.broker[0].streams.Topics() {
			for _, p := range tp.Partitions() {
				l := c.broker[0].streams.Node().Leader(p)
				if l < 1 || c.broker[l-1] == nil {
					return fmt.Errorf("%s-%d has no leader", tp.Name, p.Index)
				}
				lt, _ := c.broker[l-1].streams.Topic(tp.Name)
				if isr := c.broker[l-1].streams.Node().ISR(lt.Partition(p.Index)); len(isr) != 3 {
					return fmt.Errorf("%s-%d: in sync %v", tp.Name, p.Index, isr)
				}
			}
		}
		return nil
	})
}

// waitReplicas waits until the given nodes' logs of "kept" hold every record of recs.
func waitReplicas(t *testing.T, c *testNodes, recs map[int32][]string, nodes ...int) {
	t.Helper()
	retry(t, func() error {
		for _, i := range nodes {
			tp, ok := c.broker[i].streams.Topic("kept")
			if !ok {
				return fmt.Errorf("node %d has no topic kept yet", i+1)
			}
			for p, rs := range recs {
				if end := tp.Partition(p).HighWatermark(); end < int64(len(rs)) {
					return fmt.Errorf("node %d: kept-%d ends at %d, want %d", i+1, p, end, len(rs))
				}
			}
		}
		return nil
	})
}

// TestClusterAdoptionRefusedByExistingCluster: a cluster that has topics of its own does not
// adopt a single node's data (two clusters' data are never merged): node 1's start fails, and
// its directory is the single node's again (no raft/, every record kept).
func TestClusterAdoptionRefusedByExistingCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	recs, _ := singleNodeData(t, dir, 30)
	c := &testNodes{t: t, broker: make([]*Broker, 3)}
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, freeAddr(t)))
		c.kafka = append(c.kafka, freeAddr(t))
	}
	c.dirs = []string{dir, t.TempDir(), t.TempDir()}
	c.peers = strings.Join(peers, ",")
	t.Cleanup(func() {
		for _, b := range c.broker {
			if b != nil {
				b.Shutdown(context.Background())
			}
		}
	})
	c.start(1)
	c.start(2)
	retry(t, func() error {
		_, err := c.broker[1].streams.CreateTopic("theirs", 1, nil, false)
		return err
	})
	cfg := DefaultConfig()
	cfg.DataDir, cfg.NodeID, cfg.Peers, cfg.KafkaListen = dir, 1, c.peers, c.kafka[0]
	cfg.AMQPListen, cfg.HTTPListen = "", ""
	cfg.AdoptSingleNodeData = true
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	if serr := b.Shutdown(context.Background()); serr != nil {
		t.Fatal(serr)
	}
	if err == nil {
		t.Fatal("a cluster with topics of its own adopted a single node's data")
	}
	if !strings.Contains(err.Error(), "already has topics") {
		t.Fatalf("refusal does not say why: %v", err)
	}
	t.Log(err)
	for _, p := range []string{"raft", "adopt.json"} {
		if _, err := os.Stat(dir + "/" + p); !os.IsNotExist(err) {
			t.Fatalf("%s left in the refused directory: %v", p, err)
		}
	}
	cfg = DefaultConfig()
	cfg.DataDir, cfg.KafkaListen = dir, freeAddr(t)
	cfg.AMQPListen, cfg.HTTPListen = "", ""
	single, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := single.Start(); err != nil {
		t.Fatal(err)
	}
	defer single.Shutdown(context.Background())
	tp, ok := single.streams.Topic("kept")
	if !ok {
		t.Fatal("topic kept gone")
	}
	for p, rs := range recs {
		if end := tp.Partition(p).HighWatermark(); end != int64(len(rs)) {
			t.Fatalf("kept-%d ends at %d after the refusal, want %d", p, end, len(rs))
		}
	}
	if _, ok := single.streams.Topic("theirs"); ok {
		t.Fatal("the other cluster's topic was created in the single node's directory")
	}
}
