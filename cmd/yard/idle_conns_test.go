package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

// TestMeasureIdleConnectionCost reports what idle connections cost a `yard serve` process
// (heap and goroutine stacks, from the runtime's own figures). A measurement, not a test:
// it runs only with YARD_MEASURE_IDLE_CONNS=N (connections per protocol), e.g. 3000.
func TestMeasureIdleConnectionCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("YARD_MEASURE_IDLE_CONNS"))
	if n <= 0 {
		t.Skip("set YARD_MEASURE_IDLE_CONNS=N to measure N idle connections per protocol")
	}
	y := harness.Start(t, harness.WithArgs("--http-pprof", "--log-level", "warn"))
	base := serverMem(t, y.HTTPAddr)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range n {
		c := dialT(t, y.KafkaAddr)
		held = append(held, c)
		if err := kafkaApiVersionsOn(c); err != nil {
			t.Fatal(err)
		}
	}
	afterKafka := serverMem(t, y.HTTPAddr)
	for range n {
		c := dialT(t, y.AMQPAddr)
		held = append(held, c)
		if err := amqpOpen(c); err != nil {
			t.Fatal(err)
		}
	}
	afterAMQP := serverMem(t, y.HTTPAddr)
	per := func(a, b memFigures) string {
		return fmt.Sprintf("heap %d KiB + stacks %d KiB per connection (total %d MB)",
			(b.heap-a.heap)/int64(n)>>10, (b.stack-a.stack)/int64(n)>>10, (b.heap+b.stack-a.heap-a.stack)>>20)
	}
	t.Logf("%d idle Kafka connections: %s", n, per(base, afterKafka))
	t.Logf("%d idle AMQP connections: %s", n, per(afterKafka, afterAMQP))
}

type memFigures struct{ heap, stack int64 }

// serverMem reads HeapInuse and StackInuse from the server's /debug/pprof/heap?debug=1 after
// a GC (the gc=1 parameter).
func serverMem(t *testing.T, httpAddr string) memFigures {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m memFigures
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			m.heap, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "# Stack = "); ok {
			f := strings.Fields(v) // "inuse / sys"
			m.stack, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return m
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c
}

// kafkaApiVersionsOn sends ApiVersions v0 on c and reads the whole answer.
func kafkaApiVersionsOn(c net.Conn) error {
	if _, err := c.Write([]byte{0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 1, 0, 1, 't'}); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:])))
	return err
}

// amqpOpen runs the AMQP handshake by hand (guest/guest, vhost "/", heartbeat 60 s).
func amqpOpen(c net.Conn) error {
	r := bufio.NewReader(c)
	readFrame := func() error {
		var hdr [7]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		_, err := io.CopyN(io.Discard, r, int64(binary.BigEndian.Uint32(hdr[3:]))+1)
		return err
	}
	method := func(class, id uint16, args []byte) []byte {
		p := binary.BigEndian.AppendUint16(nil, class)
		p = binary.BigEndian.AppendUint16(p, id)
		p = append(p, args...)
		f := []byte{1, 0, 0}
		f = binary.BigEndian.AppendUint32(f, uint32(len(p)))
		return append(append(f, p...), 0xCE)
	}
	if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
		return err
	}
	if err := readFrame(); err != nil { // connection.start
		return err
	}
	// start-ok: client-properties {}, mechanism PLAIN, response, locale
	startOk := []byte{0, 0, 0, 0, 5, 'P', 'L', 'A', 'I', 'N'}
	resp := "\x00guest\x00guest"
	startOk = binary.BigEndian.AppendUint32(startOk, uint32(len(resp)))
	startOk = append(startOk, resp...)
	startOk = append(startOk, 5, 'e', 'n', '_', 'U', 'S')
	if _, err := c.Write(method(10, 11, startOk)); err != nil {
		return err
	}
	if err := readFrame(); err != nil { // connection.tune
		return err
	}
	tuneOk := []byte{0x07, 0xff, 0, 2, 0, 0, 0, 60} // channel-max 2047, frame-max 131072, heartbeat 60
	if _, err := c.Write(method(10, 31, tuneOk)); err != nil {
		return err
	}
	open := []byte{1, '/', 0, 0} // vhost "/", capabilities "", insist false
	if _, err := c.Write(method(10, 40, open)); err != nil {
		return err
	}
	return readFrame() // connection.open-ok
}
