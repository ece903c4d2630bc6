package listener

import (
	"net"
	"syscall"
	"testing"
)

// Accepted connections get TCP keepalive even from a listener set up without it, so that a
// dead peer of a protocol without heartbeats (AMQP heartbeat 0) is found.
func TestAcceptedConnectionsKeepAlive(t *testing.T) {
	t.Parallel()
	lc := net.ListenConfig{KeepAlive: -1} // Go's own default would turn it on already
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan [2]int, 1)
	handler := func(c *Conn) {
		rc, err := c.NetConn().(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Error(err)
			return
		}
		var on, idle int
		rc.Control(func(fd uintptr) {
			on, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
			idle, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		})
		got <- [2]int{on, idle}
	}
	s := newServer(t, Config{Protocol: "test", Handler: handler})
	serve(t, s, ln, ListenerConfig{})
	dial(t, ln.Addr().String())
	v := <-got
	if v[0] == 0 || v[1] != int(DefaultKeepAliveIdle.Seconds()) {
		t.Fatalf("SO_KEEPALIVE %d, TCP_KEEPIDLE %d s; want on, %v", v[0], v[1], DefaultKeepAliveIdle)
	}
}
