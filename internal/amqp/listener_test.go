package amqp

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/listener/listenertest"
)

// TestAcceptErrorsDoNotEndServe: running out of file descriptors (EMFILE) used to end Serve
// for good, silently, with the port still bound. Now the accept loop backs off and goes on.
func TestAcceptErrorsDoNotEndServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := listenertest.New(ln)
	fl.Fail(3, syscall.EMFILE)
	s := NewServer(Config{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(fl) }()
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if served != nil {
			if err := <-served; err != nil {
				t.Error(err)
			}
		}
	}()
	opened := make(chan error, 1)
	go func() {
		c, err := amqp091.Dial(fmt.Sprintf("amqp://guest:guest@%s/", ln.Addr()))
		if err == nil {
			c.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("no connection after accept errors: %v", err)
		}
	case err := <-served:
		served = nil
		t.Fatalf("Serve ended on EMFILE: %v", err)
	}
}

// TestRegistry: the registry names each connection's user and vhost once it is open, and
// closing one by id tells the client why (320 CONNECTION_FORCED).
func TestRegistry(t *testing.T) {
	t.Parallel()
	s, url := startServer(t, Config{})
	c := dial(t, url)
	var id uint64
	for _, info := range s.Registry().List() {
		if info.Protocol == "amqp" && info.User == "guest" && info.VHost == "/" {
			id = info.ID
		}
	}
	if id == 0 {
		t.Fatalf("connection not in the registry with its user and vhost: %+v", s.Registry().List())
	}
	closed := c.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, s.Registry().Close(id, "closed by an operator"))
	err := <-closed
	if err == nil || err.Code != 320 || err.Reason != "CONNECTION_FORCED - closed by an operator" {
		t.Fatalf("connection closed with %v, want 320 and the reason", err)
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{MaxConnections: 1, MaxConnectionsPerIP: 5})
	dial(t, url)
	if c, err := amqp091.Dial(url); err == nil {
		c.Close()
		t.Fatal("second connection on a listener limited to one was opened")
	}
	_, url = startServer(t, Config{MaxConnectionsPerIP: 1})
	dial(t, url)
	if c, err := amqp091.Dial(url); err == nil {
		c.Close()
		t.Fatal("second connection from one address was opened")
	}
}
