package amqp

import (
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
)

// TestAnnouncedBodiesHoldNoMemory: content headers announcing the largest allowed body, with
// no body following, must not reserve the announced memory (20 of them once counted as 2.6 GB
// and blocked every publisher on the memory alarm). A larger announcement is refused with 406,
// as RabbitMQ's max_message_size.
//
// Not parallel: it measures the process's memory.
func TestAnnouncedBodiesHoldNoMemory(t *testing.T) {
	probe := &alarm{s: &Server{}}
	base := probe.memoryUsed()
	s, url := startServer(t, Config{MemoryHighWatermarkBytes: base + 1<<30, ResourceInterval: time.Hour})
	const conns = 20
	props := (&wire.BasicProperties{}).AppendTo(nil)
	for range conns {
		rc := rawDial(t, url, 0)
		rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
		rc.send(1, &wire.BasicPublish{RoutingKey: "nowhere"})
		rc.write(wire.AppendHeaderFrame(nil, 1, wire.ClassBasic, maxMessageBytes, props))
		rc.write([]byte{wire.FrameBody, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c', wire.FrameEnd})
		// Frames are handled in order: the reply on channel 2 says the header was.
		rc.call(2, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	}
	s.alarm.check()
	s.alarm.mu.Lock()
	reason := s.alarm.reason
	s.alarm.mu.Unlock()
	if reason != "" {
		t.Fatalf("resource alarm %q after %d announced bodies of %d bytes", reason, conns, maxMessageBytes)
	}
	if used := probe.memoryUsed(); used > base+256<<20 {
		t.Fatalf("%d announced bodies of %d bytes hold %d MiB", conns, maxMessageBytes, (used-base)>>20)
	}

	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	rc.send(1, &wire.BasicPublish{RoutingKey: "nowhere"})
	rc.write(wire.AppendHeaderFrame(nil, 1, wire.ClassBasic, maxMessageBytes+1, props))
	cl := rc.expect(wire.IDChannelClose).(*wire.ChannelClose)
	if cl.ReplyCode != wire.PreconditionFailed {
		t.Fatalf("channel.close %d %q for a body over the maximum, want 406", cl.ReplyCode, cl.ReplyText)
	}
}
