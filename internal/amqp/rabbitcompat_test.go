package amqp

// Connection- and channel-level behaviours in which yard follows RabbitMQ because clients'
// own test suites (pika, amqplib, the Java client) depend on them.

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// rawPublish appends one basic.publish with its content to b.
func rawPublish(b []byte, ch uint16, exchange, key string, props wire.BasicProperties, body []byte) []byte {
	b = wire.AppendMethodFrame(b, ch, &wire.BasicPublish{Exchange: exchange, RoutingKey: key})
	b = wire.AppendHeaderFrame(b, ch, wire.ClassBasic, uint64(len(body)), props.AppendTo(nil))
	return wire.AppendBodyFrames(b, ch, body, 0)
}

// TestConfirmsBeforeChannelCloseOk: a publisher that closes its channel right after
// publishing gets every confirm before channel.close-ok and nothing on the channel after it
// (amqplib fails with "Frame on unknown channel" otherwise).
func TestConfirmsBeforeChannelCloseOk(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	rc.call(1, &wire.QueueDeclare{Queue: "confirm-close"}, wire.IDQueueDeclareOk)
	rc.call(1, &wire.ConfirmSelect{}, wire.IDConfirmSelectOk)
	const n = 10
	var b []byte
	for range n {
		b = rawPublish(b, 1, "", "confirm-close", wire.BasicProperties{}, []byte("m"))
	}
	b = wire.AppendMethodFrame(b, 1, &wire.ChannelClose{ReplyCode: 200, ReplyText: "bye"})
	rc.write(b)
	var confirmed uint64
	for {
		m := rc.expectAny()
		if ack, ok := m.(*wire.BasicAck); ok {
			confirmed = ack.DeliveryTag
			continue
		}
		if _, ok := m.(*wire.ChannelCloseOk); !ok {
			t.Fatalf("got %s, want basic.ack or channel.close-ok", m.Name())
		}
		break
	}
	if confirmed != n {
		t.Fatalf("confirmed up to %d before close-ok, want %d", confirmed, n)
	}
	// Nothing more may come on channel 1: the next frame is channel 2's open-ok.
	rc.send(2, &wire.ChannelOpen{})
	f := rc.next()
	for f.Type == wire.FrameHeartbeat {
		f = rc.next()
	}
	if m, _ := wire.DecodeMethod(f.Payload); f.Channel != 2 || m == nil || m.ID() != wire.IDChannelOpenOk {
		t.Fatalf("got frame type %d on channel %d (%v) after channel.close-ok, want channel.open-ok on 2", f.Type, f.Channel, m)
	}
}

// TestConnectionCloseOkWithoutReset: frames that follow connection.close (a client's
// publishes still in flight) are read and discarded; the client reads close-ok and then a
// clean end of stream, and its writes do not fail with EPIPE or ECONNRESET.
func TestConnectionCloseOkWithoutReset(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	b := wire.AppendMethodFrame(nil, 0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	body := make([]byte, 100<<10)
	for range 10 { // 1 MB of trailing publishes, more than the server's read buffer holds
		b = rawPublish(b, 1, "", "nowhere", wire.BasicProperties{}, body)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := rc.nc.Write(b)
		if err == nil {
			err = rc.nc.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	if m := rc.expectAny(); m.ID() != wire.IDConnectionCloseOk {
		t.Fatalf("got %s, want connection.close-ok", m.Name())
	}
	if f, err := rc.fr.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close-ok: frame type %d, err %v; want EOF", f.Type, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client's trailing frames: %v", err)
	}
}

// TestHeartbeatEveryHalfInterval: the writer sends a heartbeat on every tick (half the
// negotiated interval) after which nothing else was written, as RabbitMQ does; a heartbeat
// is not itself "something written" that would skip the next tick.
func TestHeartbeatEveryHalfInterval(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{})
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	server, client := net.Pipe()
	defer client.Close()
	c := newConn(srv, server)
	c.heartbeat = time.Hour
	tick := make(chan time.Time)
	c.heartbeatTick = tick
	go c.writeLoop()
	defer c.stopWriter()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := wire.NewFrameReader(client, 4096)
	next := func() wire.Frame {
		t.Helper()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no frame: %v", err)
		}
		return f
	}
	for i := range 4 { // an idle connection: one heartbeat per tick
		tick <- time.Now()
		if f := next(); f.Type != wire.FrameHeartbeat {
			t.Fatalf("tick %d: frame type %d, want a heartbeat", i, f.Type)
		}
	}
	// Output since the last tick: the next tick sends nothing, the one after does.
	c.send(1, &wire.ChannelFlowOk{Active: true})
	if f := next(); f.Type != wire.FrameMethod {
		t.Fatalf("frame type %d, want the method", f.Type)
	}
	tick <- time.Now()
	c.send(1, &wire.ChannelFlowOk{Active: true})
	if f := next(); f.Type != wire.FrameMethod {
		t.Fatalf("frame type %d after a tick that followed output, want the method (no heartbeat)", f.Type)
	}
	tick <- time.Now() // output since the previous tick again: nothing
	tick <- time.Now()
	if f := next(); f.Type != wire.FrameHeartbeat {
		t.Fatalf("frame type %d, want a heartbeat", f.Type)
	}
}
