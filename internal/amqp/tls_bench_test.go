package amqp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
	"github.com/yardmq/yard/internal/vhost"
)

// BenchmarkConfirmAckTLS: BenchmarkDurableConfirmAck's flow (1 KiB messages, one publisher
// with confirms, 1000 outstanding, one consumer with manual acks and prefetch 100) over
// plain AMQP and over AMQPS (TLS 1.3, ECDSA P-256 certificate), through a durable queue on
// the log engine (fsync per group commit) and through a transient in-memory queue (where
// the cost of TLS is not hidden behind the disk). Reports msgs/s and the CPU time (client and
// server together) per message. Run all in one sitting to compare.
func BenchmarkConfirmAckTLS(b *testing.B) {
	for _, durable := range []bool{true, false} {
		for _, useTLS := range []bool{false, true} {
			name := map[bool]string{true: "durable", false: "transient"}[durable] + "/" + map[bool]string{true: "tls", false: "plaintext"}[useTLS]
			b.Run(name, func(b *testing.B) { benchConfirmAck(b, durable, useTLS) })
		}
	}
}

func benchConfirmAck(b *testing.B, durable, useTLS bool) {
	dir := b.TempDir()
	s, url := startServer(b, Config{VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, o queue.Options) (queue.Store, error) {
		if !o.Durable {
			return queue.MemoryStore{}, nil
		}
		return queue.OpenLogStore(filepath.Join(dir, name), queue.LogStoreOptions{})
	}})})
	dialURL := func() *amqp091.Connection { return dial(b, url) }
	if useTLS {
		ca := tlsconftest.NewCA(b, "bench CA")
		files := ca.WriteServer(b, b.TempDir(), "yard")
		store, err := tlsconf.Open(tlsconf.Config{CertFile: files.Cert, KeyFile: files.Key})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go s.ServeTLS(ln, store)
		tlsURL := fmt.Sprintf("amqps://guest:guest@%s/", ln.Addr())
		dialURL = func() *amqp091.Connection {
			c, err := amqp091.DialTLS(tlsURL, &tls.Config{RootCAs: ca.Pool()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			return c
		}
	}
	pc, cc := dialURL(), dialURL()
	pch, cch := openCh(b, pc), openCh(b, cc)
	if _, err := pch.QueueDeclare("bench", durable, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	must(b, pch.Confirm(false))
	must(b, cch.Qos(100, 0, false))
	msgs, err := cch.Consume("bench", "", false, false, false, false, nil)
	must(b, err)
	acks := pch.NotifyPublish(make(chan amqp091.Confirmation, 2048))
	body := make([]byte, 1024)
	mode := uint8(amqp091.Transient)
	if durable {
		mode = amqp091.Persistent
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			m := <-msgs
			m.Ack(false)
		}
	}()
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	confirmed := 0
	for i := 0; i < b.N; i++ {
		for i-confirmed >= 1000 {
			<-acks
			confirmed++
		}
		must(b, pch.PublishWithContext(context.Background(), "", "bench", false, false, amqp091.Publishing{DeliveryMode: mode, Body: body}))
	}
	for confirmed < b.N {
		<-acks
		confirmed++
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		// Client and server together: less sensitive to a loaded machine than throughput.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
}
