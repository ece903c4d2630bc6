package kafka

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/log"
)

// TestWriteRangesUsesSendfile: OS-file ranges to a TCP socket go by sendfile and arrive intact,
// interleaved correctly with buffered bytes.
func TestWriteRangesUsesSendfile(t *testing.T) {
	t.Parallel()
	data := make([]byte, 300<<10)
	rand.Read(data)
	name := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{nc: nc, bw: bufio.NewWriter(nc), log: slog.New(slog.DiscardHandler)}
	c.bw.WriteString("head")
	ranges := []log.Range{
		{File: log.OSFile{File: f}, Pos: 1000, Len: 100 << 10}, // sendfile
		{File: log.OSFile{File: f}, Pos: 5, Len: 10},           // small: copied
		{File: log.OSFile{File: f}, Pos: 200 << 10, Len: 100 << 10},
	}
	sent, err := c.writeRanges(ranges)
	if err != nil {
		t.Fatal(err)
	}
	c.bw.WriteString("tail")
	c.bw.Flush()
	nc.Close()
	if sent != 200<<10 {
		t.Fatalf("sendfile carried %d bytes, want %d", sent, 200<<10)
	}
	want := append([]byte("head"), data[1000:1000+100<<10]...)
	want = append(want, data[5:15]...)
	want = append(want, data[200<<10:300<<10]...)
	want = append(want, "tail"...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, differing from the %d expected", len(b), len(want))
	}
}

// TestFetchByteLimits: PartitionMaxBytes and MaxBytes bound a response, except that the first
// batch is returned whole even when it is larger (KIP-74).
func TestFetchByteLimits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 2, 1, nil, "lim")
	p := ts.client(t, kgo.DefaultProduceTopic("lim"), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	val := make([]byte, 10000)
	for i := 0; i < 10; i++ {
		for part := int32(0); part < 2; part++ {
			// One record per batch: ProduceSync waits for each.
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: val}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fetch := func(partMax, respMax int32) [][]byte {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.MaxBytes = respMax
		req.SessionEpoch = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "lim"
		for part := int32(0); part < 2; part++ {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = part, partMax
			ft.Partitions = append(ft.Partitions, fp)
		}
		req.Topics = append(req.Topics, ft)
		resp := ts.raw(t).roundTrip(req).(*kmsg.FetchResponse)
		var out [][]byte
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 || p.HighWatermark != 10 {
				t.Fatalf("partition %d: %+v", p.Partition, p)
			}
			out = append(out, p.RecordBatches)
		}
		return out
	}
	one := len(fetch(1, 1<<20)[0])
	if one < 10000 || one > 10200 {
		t.Fatalf("partition limit 1 byte: got %d bytes, want exactly one batch", one)
	}
	if got := fetch(35000, 1<<20); len(got[0]) != 3*one || len(got[1]) != 3*one {
		t.Fatalf("partition limit 35000: got %d and %d bytes, want 3 batches (%d) each", len(got[0]), len(got[1]), 3*one)
	}
	if got := fetch(1<<20, 25000); len(got[0]) != 2*one || len(got[1]) != 0 {
		t.Fatalf("response limit 25000: got %d and %d bytes, want 2 batches and none", len(got[0]), len(got[1]))
	}
	if got := fetch(1<<20, 1); len(got[0]) != one || len(got[1]) != 0 {
		t.Fatalf("response limit 1: got %d and %d bytes, want one whole batch and none", len(got[0]), len(got[1]))
	}
}

// TestLargeRecordsThroughSendfile: records big enough for the sendfile path reach franz-go
// intact.
func TestLargeRecordsThroughSendfile(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "big")
	p := ts.client(t, kgo.DefaultProduceTopic("big"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	var vals [][]byte
	for i := 0; i < 20; i++ {
		v := make([]byte, 100<<10)
		rand.Read(v)
		vals = append(vals, v)
		if err := p.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c := ts.client(t, kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for i := 0; i < len(vals); {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			if !bytes.Equal(r.Value, vals[i]) {
				t.Fatalf("record %d changed", i)
			}
			i++
		}
	}
}
