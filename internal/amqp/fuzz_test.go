package amqp

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// FuzzConnection feeds arbitrary frames to a real connection after a valid handshake: the
// server must answer or close, never panic or hang, whatever arrives.
func FuzzConnection(f *testing.F) {
	frames := func(ms ...wire.Method) []byte {
		var b []byte
		for _, m := range ms {
			b = wire.AppendMethodFrame(b, 1, m)
		}
		return b
	}
	publish := wire.AppendMethodFrame(nil, 1, &wire.BasicPublish{RoutingKey: "q"})
	publish = wire.AppendHeaderFrame(publish, 1, wire.ClassBasic, 3, (&wire.BasicProperties{}).AppendTo(nil))
	publish = wire.AppendBodyFrames(publish, 1, []byte("abc"), 0)
	f.Add(frames(&wire.ChannelOpen{}, &wire.QueueDeclare{Queue: "q"}, &wire.BasicConsume{Queue: "q"}))
	f.Add(append(frames(&wire.ChannelOpen{}, &wire.QueueDeclare{Queue: "q"}, &wire.ConfirmSelect{}), publish...))
	f.Add(frames(&wire.ChannelOpen{}, &wire.BasicAck{DeliveryTag: 1, Multiple: true}, &wire.TxSelect{}, &wire.TxCommit{}))
	f.Add(frames(&wire.ChannelOpen{}, &wire.ExchangeDeclare{Exchange: "x", Type: "topic"}, &wire.QueueBind{Queue: "q", Exchange: "x"}))
	f.Add(publish)
	f.Add([]byte{1, 0, 1, 0, 0, 0, 2, 0, 20, 0xce})
	// net.Pipe has no loopback address, so the fuzzing user is not loopback-only.
	s := NewServer(Config{Heartbeat: -1, Users: map[string]string{"fuzz": "fuzz"}, LoopbackUsers: []string{}})
	defer s.Shutdown(f.Context())
	f.Fuzz(func(t *testing.T, input []byte) { runPipe(t, s, input) })
}

// runPipe runs one connection over net.Pipe: a valid handshake, then input, then EOF.
func runPipe(t *testing.T, s *Server, input []byte) {
	client, server := net.Pipe()
	c := newConn(s, server)
	done := make(chan struct{})
	go func() { defer close(done); c.serve() }()
	go io.Copy(io.Discard, client) // the server's replies
	client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	hs := append([]byte(nil), wire.ProtocolHeader...)
	hs = wire.AppendMethodFrame(hs, 0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00fuzz\x00fuzz"})
	hs = wire.AppendMethodFrame(hs, 0, &wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 8192})
	hs = wire.AppendMethodFrame(hs, 0, &wire.ConnectionOpen{VirtualHost: "/"})
	client.Write(hs)
	client.Write(input)
	client.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection did not end after its client closed")
	}
}

// TestPipeHarness checks that the fuzz harness gets past the handshake.
func TestPipeHarness(t *testing.T) {
	s := NewServer(Config{Heartbeat: -1, Users: map[string]string{"fuzz": "fuzz"}, LoopbackUsers: []string{}})
	defer s.Shutdown(t.Context())
	in := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
	in = wire.AppendMethodFrame(in, 1, &wire.QueueDeclare{Queue: "seen"})
	runPipe(t, s, in)
	if s.vhosts.Get("/").Queue("seen") == nil {
		t.Fatal("the handshake over the pipe did not complete")
	}
}
