package amqp

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// TestDurableQueueAfterFullDisk: a persistent publish to a durable queue whose disk is full
// is nacked (and logged); once space is back the queue confirms publishes again, with no
// restart.
func TestDurableQueueAfterFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys := log.NewFullFS(nil)
	var out lockedBuf
	_, url := startServer(t, Config{Logger: slog.New(slog.NewTextHandler(&out, nil)), VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, _ queue.Options) (queue.Store, error) {
		return queue.OpenLogStore(filepath.Join(dir, name), queue.LogStoreOptions{FS: fsys})
	}})})
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("dq", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	publish := func(body string) bool {
		t.Helper()
		must(t, ch.Publish("", "dq", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(body)}))
		select {
		case cf := <-confirms:
			return cf.Ack
		case <-time.After(20 * time.Second):
			t.Fatal("no confirm")
		}
		return false
	}
	if !publish("before") {
		t.Fatal("publish nacked before the disk filled")
	}
	fsys.SetFull(true)
	if publish("during") {
		t.Fatal("publish on a full disk confirmed")
	}
	if out.count("no space left on device") == 0 {
		t.Fatalf("a nack for a full disk was not logged:\n%s", out.b.String())
	}
	fsys.SetFull(false)
	if !publish("after") {
		t.Fatal("publish nacked once space was back")
	}
}
