package amqp

import (
	"bytes"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// TestWrittenKeepsOrder checks a partial write puts its rest back in front of what was
// appended meanwhile.
func TestWrittenKeepsOrder(t *testing.T) {
	var o outBuf
	o.buf = []byte("abcdef")
	buf := o.take()
	o.buf = append(o.buf, "ghi"...) // appended while the write was under way
	o.written(buf, 2)
	if got := string(o.buf); got != "cdefghi" {
		t.Fatalf("after writing 2 of 6 bytes the buffer holds %q, want %q", got, "cdefghi")
	}
	if o.inflight != 0 || !o.wrote {
		t.Fatalf("inflight %d, wrote %v after a write", o.inflight, o.wrote)
	}
}

// TestClientNotReadingDoesNotStopItsPublishes: a client whose consumer stops reading fills
// the socket towards it; the server must go on reading the same connection's publishes (only
// the writer goroutine may block on the socket, never the reader that flushes inline).
func TestClientNotReadingDoesNotStopItsPublishes(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	rc.call(1, &wire.QueueDeclare{Queue: "stalled", AutoDelete: true}, wire.IDQueueDeclareOk)
	rc.call(1, &wire.BasicConsume{Queue: "stalled", NoAck: true}, wire.IDBasicConsumeOk) // no prefetch bound
	// From here on the client writes only: every delivery stays in the socket buffers.
	body := bytes.Repeat([]byte("x"), 1024)
	var publish []byte
	publish = wire.AppendMethodFrame(publish, 1, &wire.BasicPublish{RoutingKey: "stalled"})
	publish = wire.AppendHeaderFrame(publish, 1, wire.ClassBasic, uint64(len(body)), (&wire.BasicProperties{}).AppendTo(nil))
	publish = wire.AppendBodyFrames(publish, 1, body, 131072)
	const n = 32000 // 32 MiB: well past the socket buffers both ways and outBacklogMax
	for range n {
		rc.write(publish) // fails on the 20 s deadline if the server stopped reading
	}
	// Another connection sees the messages the stalled consumer could not take.
	other := openCh(t, dial(t, url))
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := other.QueueDeclarePassive("stalled", false, true, false, false, nil)
		must(t, err)
		if st.Messages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message of %d ready after publishing to a consumer that does not read", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGetRepliesToClientNotReadingAreBounded: a client that sends basic.get + basic.reject
// (requeue) pairs for a large message and never reads its socket must not make the server
// queue one basic.get-ok per pair: once its unread replies pass outReplyMax the server stops
// reading it. Nothing is lost: once the client reads, every reply arrives and the message is
// still in the queue.
func TestGetRepliesToClientNotReadingAreBounded(t *testing.T) {
	t.Parallel()
	s, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	rc.call(1, &wire.QueueDeclare{Queue: "get-big"}, wire.IDQueueDeclareOk)
	body := bytes.Repeat([]byte("x"), 1<<20)
	var publish []byte
	publish = wire.AppendMethodFrame(publish, 1, &wire.BasicPublish{RoutingKey: "get-big"})
	publish = wire.AppendHeaderFrame(publish, 1, wire.ClassBasic, uint64(len(body)), (&wire.BasicProperties{}).AppendTo(nil))
	publish = wire.AppendBodyFrames(publish, 1, body, 131072)
	rc.write(publish)
	rc.call(1, &wire.QueueDeclare{Queue: "get-big", Passive: true}, wire.IDQueueDeclareOk)

	// From here on the client only writes: 64 pairs would be 64 MiB of replies.
	const pairs = 64
	var reqs []byte
	for tag := uint64(1); tag <= pairs; tag++ {
		reqs = wire.AppendMethodFrame(reqs, 1, &wire.BasicGet{Queue: "get-big"})
		reqs = wire.AppendMethodFrame(reqs, 1, &wire.BasicReject{DeliveryTag: tag, Requeue: true})
	}
	rc.write(reqs) // 3 KiB: fits the socket buffers whatever the server does

	waitReaderHeld(t, s)

	// The client reads again: every get-ok arrives, in order, and the message stays queued.
	for tag := uint64(1); tag <= pairs; tag++ {
		for {
			f := rc.next()
			if f.Type != wire.FrameMethod {
				continue
			}
			m, err := wire.DecodeMethod(f.Payload)
			must(t, err)
			ok, isOk := m.(*wire.BasicGetOk)
			if !isOk {
				t.Fatalf("got %s, want basic.get-ok %d", m.Name(), tag)
			}
			if ok.DeliveryTag != tag {
				t.Fatalf("basic.get-ok with tag %d, want %d", ok.DeliveryTag, tag)
			}
			break
		}
	}
	rc.send(1, &wire.QueueDeclare{Queue: "get-big", Passive: true})
	f := rc.next()
	for f.Type != wire.FrameMethod { // the last get-ok's content
		f = rc.next()
	}
	m, err := wire.DecodeMethod(f.Payload)
	must(t, err)
	decl, ok := m.(*wire.QueueDeclareOk)
	if !ok {
		t.Fatalf("got %s, want queue.declare-ok", m.Name())
	}
	if decl.MessageCount != 1 {
		t.Fatalf("queue holds %d messages after the gets and rejects, want 1", decl.MessageCount)
	}
}

// waitReaderHeld waits until the server stops reading a client that does not read its
// replies, failing if it queues more than outReplyMax, one reply and slack meanwhile.
func waitReaderHeld(t *testing.T, s *Server) {
	t.Helper()
	const bound = 4 << 20
	deadline := time.Now().Add(20 * time.Second)
	for waiting := false; !waiting; {
		var pending int
		for _, c := range s.connections() {
			c.out.mu.Lock()
			pending = max(pending, len(c.out.buf)+c.out.inflight)
			waiting = waiting || c.out.readerWaiting
			c.out.mu.Unlock()
		}
		if pending > bound {
			t.Fatalf("%d bytes of output queued for a client that does not read (bound %d)", pending, bound)
		}
		if time.Now().After(deadline) {
			t.Fatal("the server neither stopped reading nor queued the output")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReturnsToClientNotReadingAreBounded: as TestGetRepliesToClientNotReadingAreBounded, for
// basic.return: a client publishing large unroutable mandatory messages and never reading
// makes the server stop reading it, not queue every return; once it reads, each arrives.
func TestReturnsToClientNotReadingAreBounded(t *testing.T) {
	t.Parallel()
	s, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	body := bytes.Repeat([]byte("r"), 1<<20)
	var publish []byte
	publish = wire.AppendMethodFrame(publish, 1, &wire.BasicPublish{RoutingKey: "nowhere", Mandatory: true})
	publish = wire.AppendHeaderFrame(publish, 1, wire.ClassBasic, uint64(len(body)), (&wire.BasicProperties{}).AppendTo(nil))
	publish = wire.AppendBodyFrames(publish, 1, body, 131072)
	const n = 64
	wrote := make(chan error, 1)
	go func() { // blocks once the server stops reading, until the client reads below
		var err error
		for i := 0; i < n && err == nil; i++ {
			_, err = rc.nc.Write(publish)
		}
		wrote <- err
	}()
	waitReaderHeld(t, s)
	for i := range n {
		for {
			f := rc.next()
			if f.Type != wire.FrameMethod {
				continue
			}
			m, err := wire.DecodeMethod(f.Payload)
			must(t, err)
			if _, ok := m.(*wire.BasicReturn); !ok {
				t.Fatalf("got %s, want basic.return %d", m.Name(), i)
			}
			break
		}
	}
	must(t, <-wrote)
}
