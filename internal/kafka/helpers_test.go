package kafka

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
)

// testServer is a real Kafka front end on 127.0.0.1:0 over a temp data dir.
type testServer struct {
	addr    string
	srv     *Server
	st      *stream.Manager
	done    chan error
	stopped bool
}

func startServer(t testing.TB, mod func(*Config)) *testServer {
	t.Helper()
	return startServerStreams(t, nil, mod)
}

// startServerStreams is startServer with the topic manager's configuration changed by smod.
func startServerStreams(t testing.TB, smod func(*stream.Config), mod func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	scfg := stream.Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways}
	if smod != nil {
		smod(&scfg)
	}
	st, err := stream.Open(scfg, cat)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Streams: st, ClusterID: "test-cluster", AutoCreateTopics: true}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return &testServer{addr: ln.Addr().String(), srv: srv, st: st}
}

func (ts *testServer) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(ts.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (ts *testServer) admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(ts.client(t))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawConn speaks the protocol by hand, for requests real clients would not send.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	corr int32
}

func (ts *testServer) raw(t testing.TB) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(req kmsg.Request) int32 {
	r.t.Helper()
	r.corr++
	frame := frameFor(req, r.corr, "raw")
	if _, err := r.c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(frame)))); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.c.Write(frame); err != nil {
		r.t.Fatal(err)
	}
	return r.corr
}

// readFrame returns one response frame's bytes after the correlation ID (and header tags,
// when flexible), checking the correlation ID.
func (r *rawConn) readFrame(corr int32, flexibleHeader bool) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, b); err != nil {
		return nil, err
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		r.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	b = b[4:]
	if flexibleHeader {
		b = b[1:]
	}
	return b, nil
}

// roundTrip sends req and decodes its response.
func (r *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	corr := r.send(req)
	b, err := r.readFrame(corr, req.IsFlexible() && req.Key() != 18)
	if err != nil {
		r.t.Fatal(err)
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(b); err != nil {
		r.t.Fatalf("cannot decode %T: %v", resp, err)
	}
	return resp
}

// makeBatch encodes an uncompressed v2 batch of values, as a producer would.
func makeBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		body := r.AppendTo(nil)[1:] // encoded with Length 0 (one varint byte)
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(values)), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], rb.Checksum(raw))
	return raw
}

func produceReq(version int16, topic string, partition int32, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = -1
	req.TimeoutMillis = 30000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: partition, Records: batch}}}}
	return req
}

type kmsgListOffsetsResponse = kmsg.ListOffsetsResponse

func listOffsetsReq(topic string, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 9
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms) }

// startServerDir is startServer on a given data dir, stoppable before the test ends.
func startServerDir(t testing.TB, dir string) *testServer {
	t.Helper()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	st, err := stream.Open(stream.Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways}, cat)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{Streams: st, ClusterID: "test-cluster", AutoCreateTopics: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), srv: srv, st: st, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t testing.TB) {
	if ts.stopped {
		return
	}
	ts.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	if err := <-ts.done; err != nil {
		t.Error(err)
	}
	if err := ts.st.Close(); err != nil {
		t.Error(err)
	}
}
