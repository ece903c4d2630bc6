package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/listener/listenertest"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// TestAcceptErrorsDoNotEndServe: running out of file descriptors (EMFILE) used to end Serve
// for good, silently, with the port still bound. Now the accept loop backs off and goes on.
func TestAcceptErrorsDoNotEndServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	st, err := stream.Open(stream.Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways}, cat)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := NewServer(Config{Streams: st, ClusterID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := listenertest.New(ln)
	fl.Fail(3, syscall.EMFILE)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()
	defer func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if served != nil {
			if err := <-served; err != nil {
				t.Error(err)
			}
		}
	}()
	answered := make(chan error, 1)
	go func() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			answered <- err
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(60 * time.Second))
		frame := frameFor(kmsg.NewPtrApiVersionsRequest(), 1, "t")
		if _, err := nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
			answered <- err
			return
		}
		var size [4]byte
		_, err = io.ReadFull(nc, size[:])
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("no answer after accept errors: %v", err)
		}
	case err := <-served:
		served = nil
		t.Fatalf("Serve ended on EMFILE: %v", err)
	}
}

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	a, b := ts.raw(t), ts.raw(t)
	for _, rc := range []*rawConn{a, b} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 1
		rc.roundTrip(req)
	}
	c := ts.raw(t)
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("third connection from one address not closed: %v", err)
	}
	if n := ts.srv.Registry().Len(); n != 2 {
		t.Fatalf("registry lists %d connections, want 2", n)
	}
}
