package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRequestReadTimeout: a client that starts a request and then trickles (here: stops) is
// dropped after RequestReadTimeout, not after the idle timeout; an idle connection is not.
func TestRequestReadTimeout(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.RequestReadTimeout = 50 * time.Millisecond })
	idle := ts.raw(t)
	slow := ts.raw(t)
	// A 100-byte request of which 6 bytes arrive.
	if _, err := slow.c.Write([]byte{0, 0, 0, 100, 0, 18}); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("trickling connection not closed: %v", err)
	}
	// The idle one, older than the slow one, still serves.
	idle.roundTrip(kmsg.NewPtrApiVersionsRequest())
}

// bigMetadataRequest is a valid request of about size bytes.
func bigMetadataRequest(size int) []byte {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 4
	for i := 0; i < size/100; i++ {
		tp := kmsg.NewMetadataRequestTopic()
		name := fmt.Sprintf("t%0*d", 97, i)
		tp.Topic = &name
		req.Topics = append(req.Topics, tp)
	}
	frame := frameFor(req, 1, "big")
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
}

func waitBudget(t *testing.T, ts *testServer, used int64, waiting int) {
	t.Helper()
	for {
		u, w := ts.srv.reqMem.state()
		if u == used && w == waiting {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueuedMaxRequestBytesPausesReading: when in-flight requests have reserved the whole
// budget, another request waits (it is not failed) until one is handled.
func TestQueuedMaxRequestBytesPausesReading(t *testing.T) {
	t.Parallel()
	big := bigMetadataRequest(50_000)
	size := int64(len(big) - 4)
	ts := startServer(t, func(c *Config) {
		c.QueuedMaxRequestBytes = size
		c.AutoCreateTopics = false
	})
	a, b := ts.raw(t), ts.raw(t)
	if _, err := a.c.Write(big[:len(big)/2]); err != nil {
		t.Fatal(err)
	}
	waitBudget(t, ts, size, 0)
	corr := b.send(kmsg.NewPtrApiVersionsRequest())
	waitBudget(t, ts, size, 1) // b is paused
	if _, err := a.c.Write(big[len(big)/2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.readFrame(1, false); err != nil {
		t.Fatalf("big request not answered: %v", err)
	}
	if _, err := b.readFrame(corr, false); err != nil {
		t.Fatalf("paused request not answered once memory returned: %v", err)
	}
	waitBudget(t, ts, 0, 0)
}

// TestAnnouncedSizesHoldLittleMemory: size prefixes announcing 100 MiB, with a few bytes
// behind them, used to allocate 100 MiB each at once. Now buffers grow as bytes arrive, and
// only what is held is reserved, so the announcers neither hold memory nor stall another
// client's request. (Not parallel: it reads the heap size.)
func TestAnnouncedSizesHoldLittleMemory(t *testing.T) {
	const (
		conns     = 30 // more than the default budget holds at 100 MiB each
		announced = 100 << 20
	)
	ts := startServer(t, nil)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	frame := binary.BigEndian.AppendUint32(nil, announced)
	frame = append(frame, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0) // Metadata v1 header...
	frame = append(frame, []byte(strings.Repeat("x", 186))...)
	var held []net.Conn
	for range conns {
		rc := ts.raw(t)
		if _, err := rc.c.Write(frame); err != nil {
			t.Fatal(err)
		}
		held = append(held, rc.c)
	}
	waitBudget(t, ts, conns*reqChunkBytes, 0)
	ts.raw(t).roundTrip(kmsg.NewPtrApiVersionsRequest()) // another client is not stalled
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d connections announcing %d MiB each: heap grew %d KiB", conns, announced>>20, grown>>10)
	if grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB for %d announced 100 MiB requests of 200 bytes", grown>>20, conns)
	}
	for _, c := range held {
		c.Close()
	}
	waitBudget(t, ts, 0, 0)
}
