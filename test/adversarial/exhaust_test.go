package adversarial_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/test/harness"
)

const (
	// rssBoundBytes is what yard may hold while the attacks below run: a generous bound (idle
	// yard is ~20 MiB) that every attack would pass by gigabytes if it reserved what it is told.
	rssBoundBytes = 512 << 20
	// rssWatch is how long the resident set is watched after an attack has been sent.
	rssWatch = 3 * time.Second

	announcedKafkaConns = 50        // connections announcing a request they never send
	announcedKafkaBytes = 100 << 20 // each announces this much (the default request limit)
	announcedAMQPConns  = 20        // connections announcing a message body they never send
	announcedAMQPBytes  = 100 << 20 // each announces this much (under the 128 MiB message limit)
	getRejectPairs      = 1000      // basic.get + basic.reject pairs of a client that never reads
	getMessageBytes     = 1 << 20   // the message those pairs fetch again and again
)

// watchRSS samples yard's memory for rssWatch and fails the test if it passes the bound: the
// resident set, and the Go heap that yard's /metrics reports (a buffer allocated for an
// announced size and not yet filled is heap that the memory alarm counts, though not resident).
func watchRSS(t *testing.T, y *harness.Yard, what string) {
	t.Helper()
	var peakRSS, peakHeap int64
	for end := time.Now().Add(rssWatch); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		peakRSS, peakHeap = max(peakRSS, y.RSSBytes()), max(peakHeap, heapBytes(t, y))
		if peakRSS > rssBoundBytes || peakHeap > rssBoundBytes {
			t.Fatalf("%s: yard's resident set reached %d MiB and its heap %d MiB (bound %d MiB)",
				what, peakRSS>>20, peakHeap>>20, rssBoundBytes>>20)
		}
	}
	t.Logf("%s: peak resident set %d MiB, peak heap %d MiB", what, peakRSS>>20, peakHeap>>20)
}

// heapBytes reads go_memstats_heap_alloc_bytes from yard's /metrics.
func heapBytes(t *testing.T, y *harness.Yard) int64 {
	t.Helper()
	resp, err := http.Get("http://" + y.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatalf("cannot read /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("cannot parse heap bytes %q: %v", v, err)
			}
			return int64(f)
		}
	}
	t.Fatal("no go_memstats_heap_alloc_bytes in /metrics")
	return 0
}

// TestAnnouncedSizesHoldNoMemory: sizes that clients announce (a Kafka request's size prefix, an
// AMQP content header's body size) and never send must not be reserved in memory, and must not
// block other publishers through the memory alarm.
func TestAnnouncedSizesHoldNoMemory(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	handshake := recordHandshake(t, y.AMQPAddr)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range announcedKafkaConns {
		c, err := net.Dial("tcp", y.KafkaAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		frame := binary.BigEndian.AppendUint32(nil, announcedKafkaBytes)
		frame = append(frame, 0, 0, 0, 9, 0, 0, 0, 1) // the start of a Produce header
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	for range announcedAMQPConns {
		c, err := net.Dial("tcp", y.AMQPAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		go drain(c)
		out := append([]byte(nil), handshake...)
		out = wire.AppendMethodFrame(out, 1, &wire.BasicPublish{RoutingKey: "nowhere"})
		out = wire.AppendHeaderFrame(out, 1, 60, announcedAMQPBytes, []byte{0, 0})
		out = append(out, 3, 0, 1, 0, 0, 0, 4, 'b', 'o', 'd', 'y', 0xce) // 4 bytes of the body
		if _, err := c.Write(out); err != nil {
			t.Fatal(err)
		}
	}
	watchRSS(t, y, "sizes announced and not sent")
	// Everyone else is still served: a confirmed publish and a Kafka round trip.
	if err := amqpAlive(y.AMQPAddr); err != nil {
		t.Fatalf("AMQP: %v", err)
	}
	confirmOne(t, y.AMQPAddr)
	if err := kafkaAlive(y.KafkaAddr); err != nil {
		t.Fatalf("Kafka: %v", err)
	}
}

// TestBasicGetOutputBounded: a client that fetches a 1 MiB message with basic.get, rejects it
// back and again, and never reads its socket, must not grow yard by a megabyte a pair.
func TestBasicGetOutputBounded(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	handshake := recordHandshake(t, y.AMQPAddr)
	c, ch := amqpDial(t, y.AMQPAddr)
	if _, err := ch.QueueDeclare("big", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "big", false, false, amqp091.Publishing{Body: bytes.Repeat([]byte("m"), getMessageBytes)}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	raw, err := net.Dial("tcp", y.AMQPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	out := append([]byte(nil), handshake...)
	for tag := uint64(1); tag <= getRejectPairs; tag++ {
		out = wire.AppendMethodFrame(out, 1, &wire.BasicGet{Queue: "big"})
		out = wire.AppendMethodFrame(out, 1, &wire.BasicReject{DeliveryTag: tag, Requeue: true})
	}
	go func() { // never reads; the write may block once yard stops reading: that is the point
		raw.SetWriteDeadline(time.Now().Add(rssWatch + 5*time.Second))
		_, _ = raw.Write(out)
	}()
	watchRSS(t, y, "basic.get without reading")
	if err := amqpAlive(y.AMQPAddr); err != nil {
		t.Fatalf("AMQP: %v", err)
	}
}

// recordHandshake records amqp091-go opening a connection and channel 1, and returns those
// frames (protocol header, start-ok, tune-ok, open, channel.open) to be replayed raw: yard reads
// them in order, so they need not wait for its answers.
func recordHandshake(t *testing.T, addr string) []byte {
	t.Helper()
	rec := newRecorder(t, addr)
	c, err := amqp091.Dial("amqp://guest:guest@" + rec.addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Channel(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	frames := amqpFrames(rec.sessions()[0])
	var out []byte
	for _, f := range frames {
		if len(f) > 11 && f[0] == 1 && binary.BigEndian.Uint32(f[7:]) == wire.IDChannelOpen {
			return append(out, f...)
		}
		out = append(out, f...)
	}
	t.Fatal("no channel.open in the recorded handshake")
	return nil
}

func drain(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// confirmOne publishes one persistent message with confirms and waits for the confirm: a
// publisher blocked by a memory alarm would never get it.
func confirmOne(t *testing.T, addr string) {
	t.Helper()
	c, ch := amqpDial(t, addr)
	defer c.Close()
	if _, err := ch.QueueDeclare("after-attack", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirm("", "after-attack", false, false, amqp091.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dc.Done():
		if !dc.Acked() {
			t.Fatal("publish after the attack was nacked")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish after the attack not confirmed within 30 s (memory alarm?)")
	}
}
