package amqp_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// deepQueueRSSMaxBytes is issue 6's bar: 10 million 1 KiB messages in one queue keep the
// process under 200 MiB resident.
const deepQueueRSSMaxBytes = 200 << 20

// yardRSS returns the resident set of the yard process serving dataDir, found through /proc.
func yardRSS(t *testing.T, dataDir string) int64 {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(dataDir)) || !bytes.Contains(cmd, []byte("serve")) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	t.Fatalf("cannot find the yard process serving %s", dataDir)
	return 0
}

// TestDeepQueueMemoryBound fills one durable queue with 1 KiB persistent messages (confirmed)
// and drains it, sampling the server's RSS throughout. The count defaults to 100,000 (a few
// seconds); YARD_DEEP_QUEUE_MESSAGES=10000000 runs the full 10-million bar.
func TestDeepQueueMemoryBound(t *testing.T) {
	t.Parallel()
	n := 100_000
	if s := os.Getenv("YARD_DEEP_QUEUE_MESSAGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	y := harness.Start(t)
	_, ch := dialY(t, y)
	if _, err := ch.QueueDeclare("deep", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var maxRSS atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := yardRSS(t, y.DataDir); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	acks := ch.NotifyPublish(make(chan amqp091.Confirmation, 8192))
	body := make([]byte, 1024)
	start := time.Now()
	confirmed := 0
	for i := 0; i < n; i++ {
		copy(body, strconv.Itoa(i)+";")
		for i-confirmed >= 4096 {
			if c := <-acks; !c.Ack {
				t.Fatalf("publish %d nacked", c.DeliveryTag)
			}
			confirmed++
		}
		if err := ch.PublishWithContext(context.Background(), "", "deep", false, false, amqp091.Publishing{DeliveryMode: 2, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	for confirmed < n {
		if c := <-acks; !c.Ack {
			t.Fatalf("publish %d nacked", c.DeliveryTag)
		}
		confirmed++
	}
	fillRSS := maxRSS.Load()
	t.Logf("published %d confirmed 1 KiB messages in %s; max RSS so far %d MiB", n, time.Since(start).Round(time.Millisecond), fillRSS>>20)
	if q, err := ch.QueueDeclarePassive("deep", true, false, false, false, nil); err != nil || q.Messages != n {
		t.Fatalf("queue depth %+v %v, want %d", q, err, n)
	}
	_, cch := dialY(t, y)
	if err := cch.Qos(100, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := cch.Consume("deep", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		m := <-msgs
		if want := strconv.Itoa(i) + ";"; !bytes.HasPrefix(m.Body, []byte(want)) || len(m.Body) != 1024 {
			t.Fatalf("message %d: got %q...", i, m.Body[:16])
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-sampled
	t.Logf("drained in order; max RSS %d MiB (fill %d MiB), bar %d MiB", maxRSS.Load()>>20, fillRSS>>20, deepQueueRSSMaxBytes>>20)
	if maxRSS.Load() > deepQueueRSSMaxBytes {
		t.Fatalf("max RSS %d MiB with %d messages queued, want < %d MiB", maxRSS.Load()>>20, n, deepQueueRSSMaxBytes>>20)
	}
}
