package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns a batchConn dialled to a listener on 127.0.0.1:0 and the accepted other end.
func pair(t *testing.T) (*batchConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return newBatchConn(c), s
}

// Every byte written arrives, in order, and Close sends what is still pending before closing.
func TestBatchConnKeepsOrderAndFlushesOnClose(t *testing.T) {
	b, s := pair(t)
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(s)
		got <- all
	}()
	var want bytes.Buffer
	for i := 0; i < 20000; i++ { // past maxPending in all, so Write also blocks and resumes
		p := bytes.Repeat([]byte{byte(i)}, 1+i%200)
		want.Write(p)
		if n, err := b.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if all := <-got; !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("read %d bytes, want %d (or not in order)", len(all), want.Len())
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

// A write that failed on the network is reported by a later Write.
func TestBatchConnReportsWriteError(t *testing.T) {
	b, s := pair(t)
	defer b.Close()
	_ = s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := b.Write(make([]byte, 4096)); err != nil {
			return
		}
	}
	t.Fatal("writes to a closed peer kept succeeding")
}
