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

// A response the writer holds goes out before it waits for a later request's long poll: a
// client sharing one connection for producing and fetching (a sarama client given to both a
// producer and a consumer) would otherwise get its produce answer only when the fetch behind
// it ends, up to its max wait.
func TestProduceAnsweredBeforeLaterLongPoll(t *testing.T) {
	t.Parallel()
	g := &syncGateFS{FS: log.OSFS{}, gates: map[string]chan struct{}{}}
	ts := startServerStreams(t, func(c *stream.Config) { c.FS = g }, nil)
	adm := ts.admin(t)
	for _, topic := range []string{"t", "idle", "marker"} {
		if _, err := adm.CreateTopic(testCtx(t), 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	defer g.openGate("t")
	g.closeGate("t")

	rc := ts.raw(t)
	c1 := rc.send(produceReq(9, "t", 0, makeBatch(-1, -1, -1, "one")))
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = 11, -1, 20000, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "idle"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	rc.send(fetch)
	rc.send(produceReq(9, "marker", 0, makeBatch(-1, -1, -1, "m")))
	// The reader handles requests in order: once the third is appended, the fetch's reply is
	// queued behind the first produce's, which still waits for its fsync.
	tp, _ := ts.st.Topic("marker")
	for tp.Partition(0).EndOffset() == 0 {
		time.Sleep(time.Millisecond)
	}
	g.openGate("t")
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second)) // well below the fetch's max wait (20 s)
	b, err := rc.readFrame(c1, true)
	if err != nil {
		t.Fatalf("no answer to the produce while the fetch behind it long-polls: %v", err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("produce: error %d, offset %d", p.ErrorCode, p.BaseOffset)
	}
}
