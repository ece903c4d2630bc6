package listener

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/listener/listenertest"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echo answers each line with itself until EOF.
func echo(c *Conn) {
	nc := c.NetConn()
	r := bufio.NewReader(nc)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(nc, line); err != nil {
			return
		}
	}
}

// roundTrip dials addr, sends a line and returns the answer.
func roundTrip(t *testing.T, addr string) (string, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "ping\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(nc).ReadString('\n')
}

// serve starts s.Serve(ln) and returns the channel its result arrives on; Shutdown is
// registered for cleanup.
func serve(t *testing.T, s *Server, ln net.Listener, lc ListenerConfig) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, lc) }()
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return done
}

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptErrorsBackOffAndNeverEndServe(t *testing.T) {
	t.Parallel()
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			s := newServer(t, Config{Protocol: "test", Handler: echo, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			fl := listenertest.New(listen(t))
			fl.Fail(6, errno)
			served := serve(t, s, fl, ListenerConfig{Name: "fault"})
			got := make(chan string, 1)
			go func() {
				line, err := roundTrip(t, fl.Addr().String())
				if err != nil {
					line = err.Error()
				}
				got <- line
			}()
			select {
			case line := <-got:
				if line != "ping\n" {
					t.Fatalf("answer %q, want the echo", line)
				}
			case err := <-served:
				t.Fatalf("Serve ended on a transient accept error: %v", err)
			}
			log := logs.String()
			if n := strings.Count(log, "cannot accept connection"); n != 1 {
				t.Fatalf("%d accept-error lines for 6 failures within the log interval, want 1:\n%s", n, log)
			}
			if !strings.Contains(log, errno.Error()) || !strings.Contains(log, "listener=fault") {
				t.Fatalf("log does not say what failed where:\n%s", log)
			}
		})
	}
}

func TestBackoffDoublesToOneSecond(t *testing.T) {
	t.Parallel()
	var d time.Duration
	var seen []time.Duration
	for range 10 {
		d = min(max(2*d, acceptBackoffMin), acceptBackoffMax)
		seen = append(seen, d)
	}
	if seen[0] != 5*time.Millisecond || seen[1] != 10*time.Millisecond || seen[9] != time.Second {
		t.Fatalf("backoff sequence %v", seen)
	}
}

func TestShutdownEndsBackoffWait(t *testing.T) {
	t.Parallel()
	s := newServer(t, Config{Protocol: "test", Handler: echo})
	fl := listenertest.New(listen(t))
	fl.Fail(1<<30, syscall.EMFILE)
	served := serve(t, s, fl, ListenerConfig{})
	for fl.Calls() < 3 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestListenerClosedBySomeoneElseEndsServe(t *testing.T) {
	t.Parallel()
	s := newServer(t, Config{Protocol: "test", Handler: echo})
	ln := listen(t)
	served := serve(t, s, ln, ListenerConfig{})
	ln.Close()
	if err := <-served; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve returned %v, want net.ErrClosed", err)
	}
}

// holdHandler keeps each connection until the client closes it, and reports it started.
func holdHandler(started chan<- *Conn) Handler {
	return func(c *Conn) {
		started <- c
		io.Copy(io.Discard, c.NetConn())
	}
}

// refused reports whether the server closed nc without a word.
func refused(t *testing.T, nc net.Conn) bool {
	t.Helper()
	var b [1]byte
	_, err := nc.Read(b[:])
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func waitLen(t *testing.T, r *Registry, n int) {
	t.Helper()
	for r.Len() != n {
		time.Sleep(time.Millisecond)
	}
}

func TestMaxConnectionsPerListener(t *testing.T) {
	t.Parallel()
	started := make(chan *Conn, 10)
	var logs syncBuffer
	s := newServer(t, Config{Protocol: "test", Handler: holdHandler(started), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	limited, open := listen(t), listen(t)
	serve(t, s, limited, ListenerConfig{Name: "limited", MaxConnections: 2})
	serve(t, s, open, ListenerConfig{Name: "open"})
	a := dial(t, limited.Addr().String())
	<-started
	dial(t, limited.Addr().String())
	<-started
	third := dial(t, limited.Addr().String())
	if !refused(t, third) {
		t.Fatal("third connection on a listener limited to 2 was not closed")
	}
	dial(t, open.Addr().String()) // the limit is the listener's, not the server's
	<-started
	if !strings.Contains(logs.String(), "listener's max connections reached") {
		t.Fatalf("refusal not logged:\n%s", logs.String())
	}
	a.Close()
	waitLen(t, s.Registry(), 2)
	dial(t, limited.Addr().String())
	<-started // a slot freed by a closed connection is reusable
}

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	started := make(chan *Conn, 10)
	s := newServer(t, Config{Protocol: "test", Handler: holdHandler(started), MaxConnectionsPerIP: 2})
	ln1, ln2 := listen(t), listen(t)
	serve(t, s, ln1, ListenerConfig{})
	serve(t, s, ln2, ListenerConfig{})
	a := dial(t, ln1.Addr().String())
	<-started
	dial(t, ln2.Addr().String())
	<-started
	// Both from 127.0.0.1: the third, on either listener, is refused.
	if !refused(t, dial(t, ln1.Addr().String())) {
		t.Fatal("third connection from one address was not closed")
	}
	// Another loopback address is another source.
	other, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, ln1.Addr().(*net.TCPAddr))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	defer other.Close()
	<-started
	a.Close()
	waitLen(t, s.Registry(), 2)
	dial(t, ln2.Addr().String())
	<-started
}

func TestRegistryListSetIdentityAndClose(t *testing.T) {
	t.Parallel()
	reg := NewRegistry()
	started := make(chan *Conn, 10)
	closed := make(chan string, 10)
	handler := func(c *Conn) {
		c.SetIdentity("alice", "/prod")
		c.SetCloser(func(reason string) {
			closed <- reason
			c.NetConn().Close()
		})
		started <- c
		io.Copy(io.Discard, c.NetConn())
	}
	k := newServer(t, Config{Protocol: "kafka", Handler: holdHandler(started), Registry: reg})
	a := newServer(t, Config{Protocol: "amqp", Handler: handler, Registry: reg})
	kln, aln := listen(t), listen(t)
	serve(t, k, kln, ListenerConfig{Name: "plain"})
	serve(t, a, aln, ListenerConfig{})
	kc := dial(t, kln.Addr().String())
	<-started
	ac := dial(t, aln.Addr().String())
	<-started
	list := reg.List()
	if len(list) != 2 {
		t.Fatalf("registry lists %d connections, want 2: %+v", len(list), list)
	}
	ki, ai := list[0], list[1]
	if ki.Protocol != "kafka" || ki.Listener != "plain" || ki.Remote != kc.LocalAddr().String() || ki.Local != kln.Addr().String() || ki.ConnectedAt.IsZero() || ki.User != "" {
		t.Fatalf("kafka entry %+v", ki)
	}
	if ai.Protocol != "amqp" || ai.Listener != aln.Addr().String() || ai.User != "alice" || ai.VHost != "/prod" || ai.Remote != ac.LocalAddr().String() || ai.ID <= ki.ID {
		t.Fatalf("amqp entry %+v", ai)
	}
	if err := reg.Close(ai.ID, "closed by an operator"); err != nil {
		t.Fatal(err)
	}
	if r := <-closed; r != "closed by an operator" {
		t.Fatalf("closer got %q", r)
	}
	if !refused(t, ac) {
		t.Fatal("connection closed by id still open")
	}
	waitLen(t, reg, 1)
	if err := reg.Close(ki.ID, "x"); err != nil { // no closer: the socket is closed
		t.Fatal(err)
	}
	if !refused(t, kc) {
		t.Fatal("connection without a closer not closed by id")
	}
	waitLen(t, reg, 0)
	if err := reg.Close(ai.ID, "again"); !errors.Is(err, ErrNoConnection) {
		t.Fatalf("closing a gone connection: %v", err)
	}
}

func TestShutdownClosesGracefullyThenStopsAccepting(t *testing.T) {
	t.Parallel()
	started := make(chan *Conn, 10)
	finished := make(chan struct{}, 10)
	handler := func(c *Conn) {
		c.SetCloser(func(reason string) {
			// A graceful close: tell the client, let it go.
			io.WriteString(c.NetConn(), "bye: "+reason+"\n")
			c.NetConn().(*net.TCPConn).CloseWrite()
		})
		started <- c
		io.Copy(io.Discard, c.NetConn()) // in-flight work: ends when the client goes
		finished <- struct{}{}
	}
	s := newServer(t, Config{Protocol: "test", Handler: handler})
	ln1, ln2 := listen(t), listen(t)
	served1 := serve(t, s, ln1, ListenerConfig{})
	served2 := serve(t, s, ln2, ListenerConfig{})
	c1 := dial(t, ln1.Addr().String())
	<-started
	c2 := dial(t, ln2.Addr().String())
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	for _, c := range []net.Conn{c1, c2} {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "bye: broker shutdown\n" {
			t.Fatalf("client read %q, %v; want the closer's goodbye", line, err)
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while handlers were still running", err)
	default:
	}
	c1.Close()
	c2.Close()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if len(finished) != 2 {
		t.Fatalf("%d handlers finished before Shutdown returned, want 2", len(finished))
	}
	for _, served := range []<-chan error{served1, served2} {
		if err := <-served; err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	}
	if _, err := net.Dial("tcp", ln1.Addr().String()); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
	late := listen(t)
	if err := s.Serve(late, ListenerConfig{}); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", late.Addr().String()); err == nil {
		t.Fatal("Serve after Shutdown left its listener open")
	}
}

func TestShutdownDeadlineClosesSockets(t *testing.T) {
	t.Parallel()
	started := make(chan *Conn, 1)
	ended := make(chan struct{})
	handler := func(c *Conn) {
		c.SetCloser(func(string) {}) // a front end that ignores the request
		started <- c
		io.Copy(io.Discard, c.NetConn())
		close(ended)
	}
	s := newServer(t, Config{Protocol: "test", Handler: handler})
	ln := listen(t)
	serve(t, s, ln, ListenerConfig{})
	dial(t, ln.Addr().String())
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v", err)
	}
	<-ended // the socket was closed under the handler
}

func TestHandshakeRunsOffTheAcceptGoroutine(t *testing.T) {
	t.Parallel()
	// The handshake wants a "HELLO\n" preamble and hands the handler a wrapped connection.
	hs := func(ctx context.Context, nc net.Conn) (net.Conn, error) {
		r := bufio.NewReader(nc)
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line != "HELLO\n" {
			return nil, errors.New("bad preamble")
		}
		return &bufConn{Conn: nc, r: r}, nil
	}
	s := newServer(t, Config{Protocol: "test", Handler: echo})
	ln := listen(t)
	serve(t, s, ln, ListenerConfig{Handshake: hs})
	silent := dial(t, ln.Addr().String()) // stuck in its handshake
	_ = silent
	nc := dial(t, ln.Addr().String())
	io.WriteString(nc, "HELLO\nping\n")
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("after the handshake got %q, %v", line, err)
	}
	bad := dial(t, ln.Addr().String())
	io.WriteString(bad, "EHLO\n")
	if !refused(t, bad) {
		t.Fatal("failed handshake did not close the connection")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	hs := func(ctx context.Context, nc net.Conn) (net.Conn, error) {
		var b [1]byte
		_, err := nc.Read(b[:]) // the deadline set by the listener ends this
		return nil, err
	}
	s := newServer(t, Config{Protocol: "test", Handler: echo, HandshakeTimeout: time.Millisecond})
	ln := listen(t)
	serve(t, s, ln, ListenerConfig{Handshake: hs})
	if !refused(t, dial(t, ln.Addr().String())) {
		t.Fatal("handshake past its timeout did not close the connection")
	}
}

type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
