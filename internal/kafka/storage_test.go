package kafka

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A produce to a full disk is KAFKA_STORAGE_ERROR with a message saying so, logged once
// however often it repeats; once space is back, produces succeed again.
func TestProduceOnFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	fsys := log.NewFullFS(nil)
	st, err := stream.Open(stream.Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways, FS: fsys}, cat)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	srv, err := NewServer(Config{Streams: st, ClusterID: "test-cluster", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
		srv.Shutdown(ctx)
		<-done
		st.Close()
	})
	ts := &testServer{addr: ln.Addr().String(), srv: srv, st: st}
	if _, err := ts.admin(t).CreateTopic(testCtx(t), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	produce := func(v string) kmsg.ProduceResponseTopicPartition {
		return rc.roundTrip(produceReq(9, "t", 0, makeBatch(-1, -1, -1, v))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	if p := produce("before"); p.ErrorCode != 0 {
		t.Fatalf("produce: error %d", p.ErrorCode)
	}
	fsys.SetFull(true)
	for range 5 {
		p := produce("during")
		if p.ErrorCode != kerr.KafkaStorageError.Code || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "no space left") {
			msg := "<nil>"
			if p.ErrorMessage != nil {
				msg = *p.ErrorMessage
			}
			t.Fatalf("produce on a full disk: error %d %q, want %d (KAFKA_STORAGE_ERROR) saying no space left", p.ErrorCode, msg, kerr.KafkaStorageError.Code)
		}
	}
	if n := strings.Count(logs.String(), "storage error"); n != 1 {
		t.Fatalf("%d log lines for 5 produces refused by a full disk, want 1:\n%s", n, logs.String())
	}
	fsys.SetFull(false)
	if p := produce("after"); p.ErrorCode != 0 || p.BaseOffset != 1 {
		t.Fatalf("produce once space is back: error %d, offset %d; want 0 at offset 1", p.ErrorCode, p.BaseOffset)
	}
}

// Storage errors of the offsets log are NOT_COORDINATOR to group clients, as Kafka's
// coordinator answers them; elsewhere they are KAFKA_STORAGE_ERROR.
func TestStorageErrorCodes(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		fmt.Errorf("cannot append: %w", syscall.ENOSPC),
		fmt.Errorf("cannot append: %w: %w", log.ErrFailed, syscall.EIO),
	} {
		if got := errorCode(err); got != kerr.KafkaStorageError.Code {
			t.Errorf("errorCode(%v) = %d, want KAFKA_STORAGE_ERROR", err, got)
		}
		if got := groupErrorCode(err); got != kerr.NotCoordinator.Code {
			t.Errorf("groupErrorCode(%v) = %d, want NOT_COORDINATOR", err, got)
		}
	}
}
