package adversarial_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

const (
	diskBytes      = 48 << 20  // the size of the file system yard's data dir is put on
	ballastBytes   = 8 << 20   // a file taking space that the test frees to end the full disk
	fillRecordSize = 128 << 10 // Kafka records that fill the disk
	fillMsgSize    = 64 << 10  // AMQP messages published on the full disk
)

// smallDisk mounts a tmpfs of diskBytes for the test (it needs root, as CI has; elsewhere the
// test is skipped, saying why).
func smallDisk(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", diskBytes), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small file system to fill (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskFull fills the disk under a running yard: producers get the protocols' errors and
// nothing acknowledged is lost; once space is back, both protocols accept writes again without
// a restart; and yard restarted on a full disk starts and serves what it holds.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	disk := smallDisk(t)
	ballast := filepath.Join(disk, "ballast")
	writeBallast(t, ballast, ballastBytes)
	y := harness.Start(t, harness.WithDataDir(filepath.Join(disk, "data")),
		harness.WithArgs("--amqp-disk-free-limit-bytes", "1")) // the write errors, not the alarm, are under test
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	_, ch := amqpDial(t, y.AMQPAddr)
	if _, err := ch.QueueDeclare("dq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	acked := fillKafka(ctx, t, y.KafkaAddr)
	confirmed := 0
	if err := publishFill(ch, 1); err != nil {
		t.Logf("AMQP publish on a full disk refused, as it should be: %v", err)
	} else {
		confirmed++ // there was room left for one; fine, it counts
	}

	// Space comes back: both protocols write again, without a restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	cl := kafkaClient(t, y.KafkaAddr)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("Kafka produce after space came back: %v", err)
	}
	acked++
	_, ch2 := amqpDial(t, y.AMQPAddr)
	if err := ch2.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if err := publishFill(ch2, 3); err != nil {
		t.Fatalf("AMQP publish to a durable queue after space came back: %v", err)
	}
	confirmed += 3

	// Full again, then a restart: yard starts on the full disk and serves what it holds.
	acked += fillKafka(ctx, t, y.KafkaAddr)
	y.Stop()
	y.Restart()
	if got := countKafka(ctx, t, y.KafkaAddr, "fill"); got < acked {
		t.Fatalf("after a restart on a full disk, %d Kafka records of %d acknowledged", got, acked)
	}
	_, ch3 := amqpDial(t, y.AMQPAddr)
	for i := range confirmed {
		if _, ok, err := ch3.Get("dq", true); err != nil || !ok {
			t.Fatalf("after a restart on a full disk, confirmed message %d of %d is missing (%v)", i, confirmed, err)
		}
	}
	checkNoPanic(t, y)
}

func writeBallast(t *testing.T, name string, n int) {
	t.Helper()
	if err := os.WriteFile(name, bytes.Repeat([]byte{0xba}, n), 0o600); err != nil {
		t.Fatal(err)
	}
}

func kafkaClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(2),
		kgo.RecordDeliveryTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// fillKafka produces incompressible records until yard refuses one, checks that the refusal is
// KAFKA_STORAGE_ERROR, and returns how many were acknowledged.
func fillKafka(ctx context.Context, t *testing.T, addr string) int {
	t.Helper()
	cl := kafkaClient(t, addr)
	value := make([]byte, fillRecordSize)
	for n := 0; n < 2*diskBytes/fillRecordSize; n++ {
		rand.Read(value)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fill", Value: value}).FirstErr()
		if err == nil {
			continue
		}
		if !errors.Is(err, kerr.KafkaStorageError) {
			t.Fatalf("a produce to a full disk failed with %v, want KAFKA_STORAGE_ERROR", err)
		}
		return n
	}
	t.Fatalf("the disk never filled")
	return 0
}

// publishFill publishes n persistent messages to "dq" and waits for each confirm.
func publishFill(ch *amqp091.Channel, n int) error {
	body := make([]byte, fillMsgSize)
	for range n {
		rand.Read(body)
		dc, err := ch.PublishWithDeferredConfirm("", "dq", false, false, amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: body})
		if err != nil {
			return err
		}
		select {
		case <-dc.Done():
			if !dc.Acked() {
				return errors.New("nacked")
			}
		case <-time.After(20 * time.Second):
			return errors.New("not confirmed within 20 s")
		}
	}
	return nil
}

// countKafka reads topic from the start to its end and returns how many records it holds.
func countKafka(ctx context.Context, t *testing.T, addr, topic string) int {
	t.Helper()
	cl := kafkaClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	n, idle := 0, 0
	for idle < 5 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		n += fs.NumRecords()
	}
	return n
}
