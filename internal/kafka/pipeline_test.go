package kafka

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// syncGateFS holds File.Sync of a topic's segment files while that topic's gate is closed.
type syncGateFS struct {
	log.FS
	mu    sync.Mutex
	gates map[string]chan struct{} // topic -> closed when open
}

func (g *syncGateFS) closeGate(topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gates[topic] = make(chan struct{})
}

func (g *syncGateFS) openGate(topic string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if ch := g.gates[topic]; ch != nil {
		close(ch)
		delete(g.gates, topic)
	}
}

func (g *syncGateFS) OpenFile(name string, flag int, perm os.FileMode) (log.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &syncGateFile{f, g, name}, nil
}

type syncGateFile struct {
	log.File
	g    *syncGateFS
	name string
}

func (f *syncGateFile) Sync() error {
	f.g.mu.Lock()
	var gate chan struct{}
	for topic, ch := range f.g.gates {
		if strings.Contains(f.name, string(os.PathSeparator)+topic+"-0"+string(os.PathSeparator)) {
			gate = ch
		}
	}
	f.g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return f.File.Sync()
}

// A response the writer has ready goes out before it waits for a later request's fsync:
// with a producer pipelining requests (Kafka's max.in.flight.requests.per.connection), the
// answer to the first must not wait in the connection's buffer until the second is durable,
// or the producer, its window full, sends nothing meanwhile.
func TestPipelinedProduceAnsweredBeforeLaterFsync(t *testing.T) {
	t.Parallel()
	g := &syncGateFS{FS: log.OSFS{}, gates: map[string]chan struct{}{}}
	ts := startServerStreams(t, func(c *stream.Config) { c.FS = g }, nil)
	adm := ts.admin(t)
	for _, topic := range []string{"fast", "slow"} {
		if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	defer g.openGate("slow")
	defer g.openGate("fast")
	g.closeGate("fast")
	g.closeGate("slow")

	rc := ts.raw(t)
	c1 := rc.send(produceReq(9, "fast", 0, makeBatch(-1, -1, -1, "one")))
	c2 := rc.send(produceReq(9, "slow", 0, makeBatch(-1, -1, -1, "two")))
	// Both appended (and so both replies queued) before the first fsync may end.
	for _, topic := range []string{"fast", "slow"} {
		tp, _ := ts.st.Topic(topic)
		for tp.Partition(0).EndOffset() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	g.openGate("fast")
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second)) // well below the produce timeout (30 s)
	b, err := rc.readFrame(c1, true)
	if err != nil {
		t.Fatalf("no answer to the first request while the second waits for its fsync: %v", err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first produce: error %d, offset %d", p.ErrorCode, p.BaseOffset)
	}
	g.openGate("slow")
	if _, err := rc.readFrame(c2, true); err != nil {
		t.Fatal(err)
	}
}
