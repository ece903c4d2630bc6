package amqp

import (
	"context"
	"path/filepath"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// BenchmarkDurableConfirmAck: persistent 1 KiB messages through a durable queue on the log
// engine (fsync per group commit), one publisher with confirms (1000 outstanding), one
// consumer with manual acks and prefetch 100, all in one process over loopback TCP.
func BenchmarkDurableConfirmAck(b *testing.B) {
	dir := b.TempDir()
	_, url := startServer(b, Config{VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, o queue.Options) (queue.Store, error) {
		if !o.Durable {
			return queue.MemoryStore{}, nil
		}
		return queue.OpenLogStore(filepath.Join(dir, name), queue.LogStoreOptions{})
	}})})
	pc, cc := dial(b, url), dial(b, url)
	pch, cch := openCh(b, pc), openCh(b, cc)
	if _, err := pch.QueueDeclare("bench", true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	must(b, pch.Confirm(false))
	must(b, cch.Qos(100, 0, false))
	msgs, err := cch.Consume("bench", "", false, false, false, false, nil)
	must(b, err)
	acks := pch.NotifyPublish(make(chan amqp091.Confirmation, 2048))
	body := make([]byte, 1024)
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
	confirmed := 0
	for i := 0; i < b.N; i++ {
		for i-confirmed >= 1000 {
			<-acks
			confirmed++
		}
		must(b, pch.PublishWithContext(context.Background(), "", "bench", false, false, amqp091.Publishing{DeliveryMode: 2, Body: body}))
	}
	for confirmed < b.N {
		<-acks
		confirmed++
	}
	<-done
}
