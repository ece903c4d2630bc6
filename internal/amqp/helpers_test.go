package amqp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/yardmq/yard/internal/vhost"
)

// newVHosts is the AMQP domain of cfg, with this front end's codec.
func newVHosts(cfg vhost.Config) *vhost.Hosts {
	cfg.Codec = Codec{}
	return vhost.New(cfg)
}

// startServer runs a real server on 127.0.0.1:0 and returns its URL.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, fmt.Sprintf("amqp://guest:guest@%s/", ln.Addr())
}

func dial(t testing.TB, url string) *amqp091.Connection {
	t.Helper()
	c, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openCh(t testing.TB, c *amqp091.Connection) *amqp091.Channel {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode checks that err is an AMQP error with code and that its text names the problem.
func wantCode(t testing.TB, err error, code int, text string) {
	t.Helper()
	var ae *amqp091.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want AMQP error %d, got %v", code, err)
	}
	if ae.Code != code || text != "" && ae.Reason != text {
		t.Fatalf("want %d %q, got %d %q", code, text, ae.Code, ae.Reason)
	}
}

func recv(t testing.TB, ch <-chan amqp091.Delivery) amqp091.Delivery {
	t.Helper()
	select {
	case d, ok := <-ch:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	return amqp091.Delivery{}
}
