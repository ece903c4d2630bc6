package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	p := &progress{total: 4 << 20, read: 1 << 20, records: 42, start: start}
	got := p.line(start.Add(time.Second))
	want := "[#######.......................]  25%  1.0/4.0 MiB  42 records  1.0 MiB/s "
	if got != want {
		t.Fatalf("line:\n got %q\nwant %q", got, want)
	}
}

// TestProgressOnlyOnTerminal: no bar when stderr is not a terminal (a pipe, a buffer).
func TestProgressOnlyOnTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "in")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(bytes.Repeat([]byte("x\n"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	if p := newProgress(f, &strings.Builder{}); p != nil {
		t.Fatal("progress bar on a buffer")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p := newProgress(f, w); p != nil {
		t.Fatal("progress bar on a pipe")
	}
}
