package main

// Start-up against damaged or missing metadata, through a real `yard serve` process: a start
// either completes or exits non-zero naming the file, and never deletes data because the
// metadata that described it is absent.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// failedStartTimeout bounds how long a start that must fail may take before the test calls
// it a hang (it fails within a second or two when it works).
const failedStartTimeout = 60 * time.Second

// TestMissingCatalogKeepsRecords: with catalog.json deleted, yard refuses to start, naming the
// file, and the acknowledged records are all there once the file is back. (yard used to start
// healthy and empty, having removed every partition as unknown.)
func TestMissingCatalogKeepsRecords(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic, total = "acked", 2000
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, total)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprint(i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	y.Stop()

	catalogPath := filepath.Join(y.DataDir, "catalog.json")
	saved, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(catalogPath); err != nil {
		t.Fatal(err)
	}
	code, out := y.RunUntilExit(failedStartTimeout)
	if code == 0 || !strings.Contains(out, "catalog.json is missing") {
		t.Fatalf("start without catalog.json: exit %d, want non-zero naming the file; output:\n%s", code, out)
	}
	for _, p := range []string{"acked-0", "acked-1"} {
		if _, err := os.Stat(filepath.Join(y.DataDir, "topics", p)); err != nil {
			t.Fatalf("partition %s gone after a refused start: %v", p, err)
		}
	}

	if err := os.WriteFile(catalogPath, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	y.Restart()
	if got := countRecords(ctx, t, y.KafkaAddr, topic, total); got != total {
		t.Fatalf("%d records after restoring catalog.json, want %d", got, total)
	}
}

func countRecords(ctx context.Context, t *testing.T, addr, topic string, want int) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	for len(seen) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return len(seen)
}

// TestMissingTopologyKeepsMessages: with amqp-topology.json deleted, yard refuses to start,
// naming the file, and the confirmed messages of a durable queue are all there once the file
// is back. (yard used to start healthy, having removed every queue store as an orphan.)
func TestMissingTopologyKeepsMessages(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	const queue, total = "orders", 500
	url := "amqp://guest:guest@" + y.AMQPAddr + "/"
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var confs []*amqp091.DeferredConfirmation
	for i := 0; i < total; i++ {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, dc)
	}
	for i, dc := range confs {
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("message %d not confirmed: %v", i, err)
		}
	}
	conn.Close()
	y.Stop()

	topoPath := filepath.Join(y.DataDir, "amqp-topology.json")
	saved, err := os.ReadFile(topoPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(topoPath); err != nil {
		t.Fatal(err)
	}
	code, out := y.RunUntilExit(failedStartTimeout)
	if code == 0 || !strings.Contains(out, "amqp-topology.json is missing") {
		t.Fatalf("start without amqp-topology.json: exit %d, want non-zero naming the file; output:\n%s", code, out)
	}

	if err := os.WriteFile(topoPath, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	y.Restart()
	conn, err = amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != total {
		t.Fatalf("%d messages after restoring amqp-topology.json, want %d", q.Messages, total)
	}
}

// TestCorruptMetadataExitsNonZero: one flipped byte in amqp-topology.json makes the start exit
// non-zero, naming the file, instead of serving Kafka with AMQP down (it used to hang, with
// SIGTERM ignored, most of the time); so does one in catalog.json.
func TestCorruptMetadataExitsNonZero(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	conn, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("durable-q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	y.Stop()
	topoPath := filepath.Join(y.DataDir, "amqp-topology.json")
	data, err := os.ReadFile(topoPath)
	if err != nil {
		t.Fatal(err)
	}
	flip := strings.Index(string(data), "durable-q")
	data[flip] ^= 0x01
	if err := os.WriteFile(topoPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // the hang was intermittent (6 starts of 7)
		code, out := y.RunUntilExit(failedStartTimeout)
		if code == 0 || !strings.Contains(out, "amqp-topology.json") {
			t.Fatalf("start with a corrupt amqp-topology.json: exit %d, want non-zero naming the file; output:\n%s", code, out)
		}
	}
	// The same for catalog.json (opened first): nothing has been opened before it fails.
	data[flip] ^= 0x01
	if err := os.WriteFile(topoPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	catPath := filepath.Join(y.DataDir, "catalog.json")
	cat, err := os.ReadFile(catPath)
	if err != nil {
		t.Fatal(err)
	}
	cat[strings.Index(string(cat), "next_producer_id")] ^= 0x01
	if err := os.WriteFile(catPath, cat, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := y.RunUntilExit(failedStartTimeout)
	if code == 0 || !strings.Contains(out, "catalog.json") {
		t.Fatalf("start with a corrupt catalog.json: exit %d, want non-zero naming the file; output:\n%s", code, out)
	}
}

// TestDataFilePermissions: what yard creates under the data directory is for its own account
// only: files 0600, directories 0700.
func TestDataFilePermissions(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.DefaultProduceTopic("perm"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "perm"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	conn, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare("perm", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	y.Stop() // writes the producer snapshots and checkpoints too
	n := 0
	err = filepath.Walk(y.DataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		n++
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d entries: %v", n, err)
	}
}

// TestAMQPDefaultPassFromFile: the default user's password can come from a file (kept out of
// the process list); giving it both ways is refused.
func TestAMQPDefaultPassFromFile(t *testing.T) {
	t.Parallel()
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := harness.Start(t, harness.WithArgs("--amqp-default-user", "alice", "--amqp-default-pass-file", pass))
	conn, err := amqp091.Dial("amqp://alice:s3cret@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatalf("password from file refused: %v", err)
	}
	conn.Close()
	if _, err := amqp091.Dial("amqp://alice:guest@" + y.AMQPAddr + "/"); err == nil {
		t.Fatal("the default password still works")
	}
	y.Stop()
	out, err := runServe(t, "--data-dir", t.TempDir(), "--kafka-listen", "", "--amqp-listen", "", "--http-listen", "",
		"--amqp-default-pass", "x", "--amqp-default-pass-file", pass)
	if err == nil || !strings.Contains(out, "both --amqp-default-pass and --amqp-default-pass-file") {
		t.Fatalf("both password sources accepted: %v\n%s", err, out)
	}
}

// runServe runs `yard serve args...` for a start expected to fail, killing it after a minute.
func runServe(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failedStartTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, harness.Binary(t), append([]string{"serve"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestFreshStartWritesMetadata: the first start writes catalog.json and amqp-topology.json, so
// that their absence later always means they were lost (a crash between creating the first
// durable queue's store and saving the topology must not look like a lost topology).
func TestFreshStartWritesMetadata(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	for _, name := range []string{"catalog.json", "amqp-topology.json"} {
		if _, err := os.Stat(filepath.Join(y.DataDir, name)); err != nil {
			t.Errorf("%s not written by the first start: %v", name, err)
		}
	}
}
