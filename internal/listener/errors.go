package listener

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// isTemporary reports whether an Accept error is one the listener recovers from by itself:
// out of file descriptors or memory, or a connection that went away while being accepted.
// It only chooses the log level: the accept loop retries every error but a closed listener.
func isTemporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED,
		syscall.ECONNRESET, syscall.EAGAIN, syscall.EINTR, syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT:
		return true
	}
	return false
}

// sourceIP is the per-IP limit's key: the remote address without its port.
func sourceIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	s := a.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

// setKeepAlive turns on TCP keepalive so that a dead peer is found even on a connection
// whose protocol has no heartbeat (AMQP with heartbeat 0, an idle Kafka client).
func setKeepAlive(nc net.Conn, idle time.Duration) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	if idle < 0 {
		tc.SetKeepAlive(false)
		return
	}
	tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: idle, Interval: idle, Count: DefaultKeepAliveCount})
}
