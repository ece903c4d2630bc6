package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestServeClusterAdoptAfterKill: a single node's data directory (a Kafka topic, a group's
// commits, an AMQP classic queue) is started as node 1 of a new cluster with
// --adopt-single-node-data while its peers are down, and SIGKILLed while it waits for them:
// its logs are untouched. Restarted (without the flag: adopt.json says the adoption is under
// way) once the peers run, the adoption completes: every record at its offset and the
// group's commits through node 2 after node 1 is SIGKILLed, and the classic queue's messages
// on node 1.
func TestServeClusterAdoptAfterKill(t *testing.T) {
	t.Parallel()
	single := harness.Start(t)
	dir := single.DataDir
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// The single node's data.
	cl, err := kgo.NewClient(kgo.SeedBrokers(single.KafkaAddr), kgo.DefaultProduceTopic("kept"))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	want := map[int32][]string{}
	for i := range 200 {
		res := cl.ProduceSync(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "v%d", i)})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		r := res[0].Record
		want[r.Partition] = append(want[r.Partition], string(r.Value))
	}
	offs := kadm.Offsets{}
	for p, rs := range want {
		offs.Add(kadm.Offset{Topic: "kept", Partition: p, At: int64(len(rs) - 1), LeaderEpoch: -1})
	}
	if r, err := adm.CommitOffsets(ctx, "g", offs); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	cl.Close()
	conn, err := amqp.Dial("amqp://guest:guest@" + single.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("classic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := ch.PublishWithContext(ctx, "", "classic", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	single.Stop()

	// Node 1 alone, told to adopt: it waits for a quorum; SIGKILL it then.
	var peers, addrs []string
	for i := range 3 {
		addrs = append(addrs, harness.ReservePort(t))
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	clusterArgs := func(id int) []string {
		return []string{"--node-id", fmt.Sprint(id), "--cluster-listen", addrs[id-1], "--peers", strings.Join(peers, ",")}
	}
	out := &syncBuffer{}
	run := func(extra ...string) *exec.Cmd {
		cmd := exec.Command(harness.Binary(t), append(append([]string{"serve", "--data-dir", dir, "--kafka-listen", harness.ReservePort(t),
			"--amqp-listen", "", "--http-listen", ""}, extra...), clusterArgs(1)...)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	cmd := run("--adopt-single-node-data")
	eventually(t, "node 1 records the adoption and opens raft/", func() error {
		for _, p := range []string{"adopt.json", "raft"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return err
			}
		}
		return nil
	})
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// Started again, still alone, it resumes waiting; SIGTERM ends the wait, adopt.json kept.
	cmd = run()
	eventually(t, "node 1 resumes the adoption", func() error {
		if !strings.Contains(out.String(), "resuming the adoption") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("node 1 interrupted while waiting for its peers exited 0:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "adopt.json")); err != nil {
		t.Fatalf("adopt.json after the interrupted wait: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "adopted this node") {
		t.Fatalf("node 1 adopted without its peers:\n%s", out.String())
	}

	// The peers, then node 1 again, without the flag.
	n2 := harness.Start(t, harness.WithArgs(clusterArgs(2)...))
	n3 := harness.Start(t, harness.WithArgs(clusterArgs(3)...))
	n1 := harness.Start(t, harness.WithDataDir(dir), harness.WithArgs(clusterArgs(1)...))
	if _, err := os.Stat(filepath.Join(dir, "adopt.json")); !os.IsNotExist(err) {
		t.Fatalf("adopt.json after the adoption: %v", err)
	}
	conn, err = amqp.Dial("amqp://guest:guest@" + n1.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		d, ok, err := ch.Get("classic", true)
		if err != nil || !ok || string(d.Body) != fmt.Sprintf("m%d", i) {
			t.Fatalf("classic queue message %d on node 1 after the adoption: %q %v %v", i, d.Body, ok, err)
		}
	}
	// The replicas hold the logs: read them through node 2 with node 1 gone.
	eventually(t, "node 3 holds the adopted logs", func() error {
		return checkAdopted(n3, want, nil)
	})
	n1.Kill()
	eventually(t, "node 2 serves the adopted logs and commits", func() error {
		return checkAdopted(n2, want, offs)
	})
}

// syncBuffer is a bytes.Buffer safe for a process's output and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checkAdopted reads every partition of "kept" through y from offset 0, and group g's commits.
func checkAdopted(y *harness.Yard, want map[int32][]string, commits kadm.Offsets) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts := map[int32]kgo.Offset{}
	total := 0
	for p, rs := range want {
		parts[p] = kgo.NewOffset().At(0)
		total += len(rs)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"kept": parts}))
	if err != nil {
		return err
	}
	defer cl.Close()
	seen := 0
	for seen < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("read %d of %d records through %s", seen, total, y.KafkaAddr)
		}
		var bad error
		fs.EachRecord(func(r *kgo.Record) {
			if rs := want[r.Partition]; r.Offset < int64(len(rs)) {
				if string(r.Value) != rs[r.Offset] {
					bad = fmt.Errorf("kept-%d at %d is %q, want %q", r.Partition, r.Offset, r.Value, rs[r.Offset])
				}
				seen++
			}
		})
		if bad != nil {
			return bad
		}
	}
	if commits == nil {
		return nil
	}
	got, err := kadm.NewClient(cl).FetchOffsets(ctx, "g")
	if err != nil {
		return err
	}
	if err := got.Error(); err != nil {
		return err
	}
	var bad error
	commits.Each(func(o kadm.Offset) {
		if g, ok := got.Lookup(o.Topic, o.Partition); !ok || g.At != o.At {
			bad = fmt.Errorf("group g's offset of %s-%d: %d, want %d", o.Topic, o.Partition, g.At, o.At)
		}
	})
	return bad
}
