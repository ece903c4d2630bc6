package amqp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// rawClient speaks frames directly, for the protocol violations real clients never commit.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	fr *wire.FrameReader
}

func rawDial(t *testing.T, url string, heartbeat uint16) *rawClient {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:guest@"), "/")
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, nc: nc, fr: wire.NewFrameReader(nc, 4096)}
	rc.fr.SetFrameMax(0)
	_, err = nc.Write(wire.ProtocolHeader)
	must(t, err)
	start := rc.expect(wire.IDConnectionStart).(*wire.ConnectionStart)
	caps := start.ServerProperties["capabilities"].(wire.Table)
	if start.ServerProperties["product"] != "yard" || caps["publisher_confirms"] != true || caps["direct_reply_to"] != true {
		t.Fatalf("server properties %v", start.ServerProperties)
	}
	rc.send(0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	tune := rc.expect(wire.IDConnectionTune).(*wire.ConnectionTune)
	if tune.ChannelMax != 2047 || tune.FrameMax != 131072 || heartbeat == 0 && tune.Heartbeat != 60 {
		t.Fatalf("tune %+v", tune)
	}
	rc.send(0, &wire.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072, Heartbeat: heartbeat})
	rc.call(0, &wire.ConnectionOpen{VirtualHost: "/"}, wire.IDConnectionOpenOk)
	return rc
}

func (rc *rawClient) send(ch uint16, m wire.Method) {
	rc.t.Helper()
	_, err := rc.nc.Write(wire.AppendMethodFrame(nil, ch, m))
	must(rc.t, err)
}

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	_, err := rc.nc.Write(b)
	must(rc.t, err)
}

func (rc *rawClient) next() wire.Frame {
	rc.t.Helper()
	f, err := rc.fr.ReadFrame()
	must(rc.t, err)
	return f
}

func (rc *rawClient) expect(id uint32) wire.Method {
	rc.t.Helper()
	for {
		f := rc.next()
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		m, err := wire.DecodeMethod(f.Payload)
		must(rc.t, err)
		if m.ID() != id {
			rc.t.Fatalf("got %s %+v, want method %d.%d", m.Name(), m, wire.ClassOf(id), wire.MethodOf(id))
		}
		return m
	}
}

// call sends m on channel ch and returns the reply, which must be method id.
func (rc *rawClient) call(ch uint16, m wire.Method, id uint32) wire.Method {
	rc.t.Helper()
	rc.send(ch, m)
	return rc.expect(id)
}

// expectConnClose waits for connection.close with code and a reply text containing text.
func (rc *rawClient) expectConnClose(code uint16, text string) {
	rc.t.Helper()
	m := rc.expect(wire.IDConnectionClose).(*wire.ConnectionClose)
	if m.ReplyCode != code || !strings.Contains(m.ReplyText, text) {
		rc.t.Fatalf("connection.close %d %q, want %d containing %q", m.ReplyCode, m.ReplyText, code, text)
	}
	rc.send(0, &wire.ConnectionCloseOk{})
}

func TestWrongProtocolHeader(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:guest@"), "/")
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	defer nc.Close()
	nc.Write([]byte("AMQP\x01\x01\x00\x0a"))
	got, err := io.ReadAll(nc)
	must(t, err)
	if !bytes.Equal(got, []byte("AMQP\x00\x00\x09\x01")) {
		t.Fatalf("got %q", got)
	}
}

func TestConnectionErrors(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	publish := (&wire.BasicPublish{RoutingKey: "q"})
	cases := []struct {
		name string
		do   func(rc *rawClient)
		code uint16
		text string
	}{
		{"method before channel.open", func(rc *rawClient) {
			rc.send(1, &wire.QueueDeclare{Queue: "x"})
		}, wire.ChannelError, "CHANNEL_ERROR - expected 'channel.open'"},
		{"second channel.open", func(rc *rawClient) {
			rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
			rc.send(1, &wire.ChannelOpen{})
		}, wire.ChannelError, "second 'channel.open'"},
		{"channel above channel_max", func(rc *rawClient) {
			rc.send(3000, &wire.ChannelOpen{})
		}, wire.ChannelError, "channel 3000 exceeds channel_max 2047"},
		{"oversized frame", func(rc *rawClient) {
			// Only the header: the server must judge the size before reading the payload.
			rc.write([]byte{wire.FrameBody, 0, 1, 0, 3, 0x0d, 0x40})
		}, wire.FrameError, "FRAME_ERROR"},
		{"bad frame end", func(rc *rawClient) {
			b := wire.AppendHeartbeat(nil)
			b[len(b)-1] = 0x00
			rc.write(b)
		}, wire.FrameError, "0xCE"},
		{"unknown method", func(rc *rawClient) {
			rc.write([]byte{wire.FrameMethod, 0, 1, 0, 0, 0, 4, 0, 99, 0, 7, wire.FrameEnd})
		}, wire.CommandInvalid, "COMMAND_INVALID - unknown method"},
		{"method instead of content header", func(rc *rawClient) {
			rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
			rc.send(1, publish)
			rc.send(1, publish)
		}, wire.UnexpectedFrame, "UNEXPECTED_FRAME - expected content header"},
		{"body without header", func(rc *rawClient) {
			rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
			rc.write(wire.AppendBodyFrames(nil, 1, []byte("x"), 0))
		}, wire.UnexpectedFrame, "UNEXPECTED_FRAME"},
		{"heartbeat on a channel", func(rc *rawClient) {
			rc.write([]byte{wire.FrameHeartbeat, 0, 1, 0, 0, 0, 0, wire.FrameEnd})
		}, wire.UnexpectedFrame, "UNEXPECTED_FRAME - type 8, all octets = <<>>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rc := rawDial(t, url, 0)
			c.do(rc)
			rc.expectConnClose(c.code, c.text)
		})
	}
}

func TestServerHeartbeatsAndMissedHeartbeats(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{Heartbeat: time.Second})
	rc := rawDial(t, url, 1)
	// The server sends heartbeats on an idle connection...
	if f := rc.next(); f.Type != wire.FrameHeartbeat {
		t.Fatalf("frame type %d, want heartbeat", f.Type)
	}
	// ...and, as this client never sends any, closes it after two missed intervals.
	for {
		if _, err := rc.fr.ReadFrame(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return
			}
			t.Fatalf("want the server to close, got %v", err)
		}
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{Users: map[string]string{"guest": "guest", "alice": "s3cret"}})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:guest@"), "/")
	// amqp091 does not announce authentication_failure_close: the socket is just closed,
	// which it reports as bad credentials (TestAuthFailureCloseOnlyWithCapability).
	_, err := amqp091.Dial("amqp://guest:wrong@" + addr + "/")
	if !errors.Is(err, amqp091.ErrCredentials) {
		t.Fatalf("wrong password: %v, want ErrCredentials", err)
	}
	c, err := amqp091.DialConfig("amqp://"+addr+"/", amqp091.Config{SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "alice", Password: "s3cret"}}})
	must(t, err)
	must(t, c.UpdateSecret("s3cret", "rotation"))
	_, err = amqp091.DialConfig("amqp://"+addr+"/", amqp091.Config{SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "alice", Password: "nope"}}})
	wantCode(t, err, 403, "")
	_, err = amqp091.Dial("amqp://guest:guest@" + addr + "/nosuchvhost")
	wantCode(t, err, 530, "NOT_ALLOWED - vhost nosuchvhost not found")
}

// TestGuestOnlyFromLoopback connects to a wildcard listener through a non-loopback address
// of this machine, if it has one.
func TestGuestOnlyFromLoopback(t *testing.T) {
	t.Parallel()
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address on this machine")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := NewServer(Config{Users: map[string]string{"guest": "guest", "bob": "pw"}})
	go s.Serve(ln)
	defer s.Shutdown(t.Context())
	_, err = amqp091.Dial("amqp://guest:guest@" + ln.Addr().String() + "/")
	wantCode(t, err, 403, "") // amqp091 does not announce authentication_failure_close: no text
	// A client that announces it is told what a wrong password would tell it, as RabbitMQ.
	rc := rawStart(t, "amqp://guest:guest@"+ln.Addr().String()+"/")
	props := wire.Table{"capabilities": wire.Table{"authentication_failure_close": true}}
	rc.send(0, &wire.ConnectionStartOk{ClientProperties: props, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	rc.expectConnClose(403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.")
	c, err := amqp091.Dial("amqp://bob:pw@" + ln.Addr().String() + "/")
	must(t, err)
	c.Close()
}

func TestConnectionBlocked(t *testing.T) {
	t.Parallel()
	var used atomic.Uint64
	used.Store(10)
	_, url := startServer(t, Config{MemoryHighWatermarkBytes: 100, MemoryUsed: used.Load, ResourceInterval: 5 * time.Millisecond})
	c := dial(t, url)
	blocked := c.NotifyBlocked(make(chan amqp091.Blocking, 4))
	ch := openCh(t, c)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	must(t, err)
	used.Store(1000)
	if b := <-blocked; !b.Active || b.Reason != "low on memory" {
		t.Fatalf("blocked %+v", b)
	}
	published := make(chan error, 1)
	go func() { published <- ch.Publish("", q.Name, false, false, amqp091.Publishing{Body: []byte("held")}) }()
	used.Store(10)
	if b := <-blocked; b.Active {
		t.Fatalf("unblocked %+v", b)
	}
	must(t, <-published)
	msgs, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	must(t, err)
	if d := recv(t, msgs); string(d.Body) != "held" {
		t.Fatalf("body %q", d.Body)
	}
}

func TestDiskFreeAlarm(t *testing.T) {
	t.Parallel()
	// The real probe: statfs on a data dir cannot have an exabyte free.
	s := NewServer(Config{DiskFreeLimitBytes: 1 << 60, DataDir: t.TempDir()})
	if free, ok := s.alarm.diskFree(); !ok || free == 0 {
		t.Fatalf("statfs probe: %d %v", free, ok)
	}
	s.alarm.check()
	s.alarm.mu.Lock()
	reason := s.alarm.reason
	s.alarm.mu.Unlock()
	if reason != "low on disk" {
		t.Fatalf("alarm %q", reason)
	}
	must(t, s.Shutdown(t.Context()))
	var free atomic.Uint64
	free.Store(1 << 30)
	_, url := startServer(t, Config{DiskFreeLimitBytes: 1 << 20, DiskFree: func() (uint64, error) { return free.Load(), nil }, ResourceInterval: 5 * time.Millisecond})
	c := dial(t, url)
	blocked := c.NotifyBlocked(make(chan amqp091.Blocking, 4))
	free.Store(1 << 10)
	if b := <-blocked; !b.Active || b.Reason != "low on disk" {
		t.Fatalf("blocked %+v", b)
	}
}

// TestGeneratedTagAndNoCancelNotifyWithoutCapability: an empty consumer tag gets an
// amq.ctag-... tag; a client that did not advertise consumer_cancel_notify (this raw client
// advertises nothing) is not sent basic.cancel when its queue is deleted.
func TestGeneratedTagAndNoCancelNotifyWithoutCapability(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	rc.call(1, &wire.QueueDeclare{Queue: "watched"}, wire.IDQueueDeclareOk)
	ok := rc.call(1, &wire.BasicConsume{Queue: "watched"}, wire.IDBasicConsumeOk).(*wire.BasicConsumeOk)
	if !strings.HasPrefix(ok.ConsumerTag, "amq.ctag-") || len(ok.ConsumerTag) < 20 {
		t.Fatalf("generated tag %q", ok.ConsumerTag)
	}
	admin := openCh(t, dial(t, url))
	_, err := admin.QueueDelete("watched", false, false, false)
	must(t, err)
	rc.call(1, &wire.ChannelClose{ReplyCode: 200}, wire.IDChannelCloseOk) // a basic.cancel first would fail here
}

// expectAny returns the next method, skipping heartbeats.
func (rc *rawClient) expectAny() wire.Method {
	rc.t.Helper()
	for {
		f := rc.next()
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type != wire.FrameMethod {
			rc.t.Fatalf("got frame type %d on channel %d, want a method", f.Type, f.Channel)
		}
		m, err := wire.DecodeMethod(f.Payload)
		must(rc.t, err)
		return m
	}
}
