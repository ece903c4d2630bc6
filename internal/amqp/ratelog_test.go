package amqp

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// lockedBuf is a log destination safe for the server's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// count returns how many lines contain s.
func (l *lockedBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestRepeatedFailuresLogRateLimited: a nack per message and a failed login per connection
// must not write a log line each.
func TestRepeatedFailuresLogRateLimited(t *testing.T) {
	t.Parallel()
	var out lockedBuf
	_, url := startServer(t, Config{Logger: slog.New(slog.NewTextHandler(&out, nil))})
	ch := openCh(t, dial(t, url))
	_, err := ch.QueueDeclare("full", false, true, false, false, amqp091.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 100))
	const n = 50
	for range n {
		must(t, ch.Publish("", "full", false, false, amqp091.Publishing{Body: []byte("m")}))
	}
	nacks := 0
	for range n {
		if c := <-confirms; !c.Ack {
			nacks++
		}
	}
	if nacks != n-1 {
		t.Fatalf("%d nacks, want %d", nacks, n-1)
	}
	if got := out.count("cannot enqueue message"); got > 1 {
		t.Fatalf("%d log lines for %d nacked messages, want 1:\n%s", got, nacks, out.b.String())
	}

	bad := strings.Replace(url, "guest:guest", "guest:wrong", 1)
	const logins = 10
	for range logins {
		if c, err := amqp091.Dial(bad); err == nil {
			c.Close()
			t.Fatal("login with a wrong password succeeded")
		}
	}
	if got := out.count("login refused") + out.count("handshake failed"); got > 1 {
		t.Fatalf("%d log lines for %d failed logins, want 1:\n%s", got, logins, out.b.String())
	}
}
