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
