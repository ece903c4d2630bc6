package amqp

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// gateFS counts the writes to one message log's segment files and holds their fsyncs: while
// held is set, or once holdAt writes were made.
type gateFS struct {
	log.FS
	prefix  string // the message log's directory
	mu      sync.Mutex
	writes  int64
	held    bool
	holdAt  int64
	open    chan struct{} // closed to let the fsyncs held now go
	reached chan struct{} // an fsync is held
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (log.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasPrefix(name, g.prefix) || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &gateFile{File: f, g: g}, nil
}

func (g *gateFS) count() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writes
}

// set lets every held fsync go and gates the next ones as told.
func (g *gateFS) set(held bool, holdAt int64) {
	g.mu.Lock()
	close(g.open)
	g.open = make(chan struct{})
	g.held, g.holdAt = held, holdAt
	g.mu.Unlock()
}

type gateFile struct {
	log.File
	g *gateFS
}

func (f *gateFile) wrote() {
	f.g.mu.Lock()
	f.g.writes++
	f.g.mu.Unlock()
}

func (f *gateFile) Write(p []byte) (int, error) { f.wrote(); return f.File.Write(p) }

func (f *gateFile) WriteAt(p []byte, off int64) (int, error) {
	f.wrote()
	return f.File.WriteAt(p, off)
}

func (f *gateFile) Sync() error {
	g := f.g
	g.mu.Lock()
	gated := g.held || g.holdAt > 0 && g.writes >= g.holdAt
	open := g.open
	g.mu.Unlock()
	if gated {
		select {
		case g.reached <- struct{}{}:
		default:
		}
		<-open
	}
	return f.File.Sync()
}

// A confirmer's batch can straddle two fsync rounds: here B is written (by another channel's
// confirmer) and made durable by one round, D, published later on the same channel, only
// after it. B's confirm must not wait for D's fsync.
func TestConfirmNotHeldByLaterFsync(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := &gateFS{FS: log.OSFS{}, prefix: datadir.QueueMessages(filepath.Join(dir, "dq")), open: make(chan struct{}), reached: make(chan struct{}, 1)}
	_, url := startServer(t, Config{VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, _ queue.Options) (queue.Store, error) {
		return queue.OpenLogStore(filepath.Join(dir, name), queue.LogStoreOptions{FS: g, FlushDelay: time.Hour})
	}})})
	t.Cleanup(func() { g.set(false, 0) }) // before the server closes: nothing stays held
	ch1, ch2 := openCh(t, dial(t, url)), openCh(t, dial(t, url))
	_, err := ch1.QueueDeclare("dq", true, false, false, false, nil)
	must(t, err)
	must(t, ch1.Confirm(false))
	must(t, ch2.Confirm(false))
	conf1 := ch1.NotifyPublish(make(chan amqp091.Confirmation, 8))
	conf2 := ch2.NotifyPublish(make(chan amqp091.Confirmation, 8))
	publish := func(ch *amqp091.Channel, body string) {
		t.Helper()
		must(t, ch.Publish("", "dq", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(body)}))
	}
	synced := func(ch *amqp091.Channel) { // the channel's earlier publishes are handled
		t.Helper()
		_, err := ch.QueueDeclarePassive("dq", true, false, false, false, nil)
		must(t, err)
	}
	confirm := func(c <-chan amqp091.Confirmation, tag uint64, what string) {
		t.Helper()
		select {
		case cf := <-c:
			if cf.DeliveryTag != tag || !cf.Ack {
				t.Fatalf("%s: confirm %+v, want ack of %d", what, cf, tag)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no confirm of %d", what, tag)
		}
	}
	waitWrites := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for g.count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the message log has %d writes, want %d", g.count(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}

	publish(ch1, "P")
	confirm(conf1, 1, "warm-up")
	w0 := g.count()
	g.set(true, 0)
	publish(ch1, "A") // written by ch1's confirmer, whose fsync round (R1) is held
	<-g.reached
	publish(ch1, "B")
	synced(ch1)
	publish(ch2, "C") // ch2's confirmer writes B and C, then waits for R1
	waitWrites(w0 + 2)
	publish(ch1, "D") // ch1's next batch is B and D; D is not written yet
	synced(ch1)
	g.set(false, w0+3) // R1 and then R2 (B and C) go; the round after D's write is held
	confirm(conf1, 2, "A")
	confirm(conf2, 1, "C")
	confirm(conf1, 3, "B, durable since the round before D's")
	<-g.reached
	g.set(false, 0)
	confirm(conf1, 4, "D")
}
