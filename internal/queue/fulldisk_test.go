package queue

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// A full disk refuses what it cannot hold, and only for as long as it is full: once space is
// back a durable queue takes (and confirms) publishes again, without a restart, and what it
// kept survives one.
func TestFullDiskRecovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys := log.NewFullFS(nil)
	open := func() (*Queue, *LogStore) {
		s, err := OpenLogStore(dir, LogStoreOptions{SyncPolicy: log.SyncAlways, FlushDelay: time.Hour, FS: fsys})
		if err != nil {
			t.Fatal(err)
		}
		return New("q", Options{Durable: true, Store: s}), s
	}
	q, _ := open()
	publish := func(body string) error {
		w, err := q.Publish(&Message{Body: []byte(body), Persistent: true})
		if err != nil {
			return err
		}
		return w.Wait(context.Background())
	}
	if err := publish("before"); err != nil {
		t.Fatal(err)
	}
	fsys.SetFull(true)
	if err := publish("during"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("confirming a publish on a full disk: %v, want ENOSPC", err)
	}
	fsys.SetFull(false)
	if err := publish("after"); err != nil {
		t.Fatalf("publish once space is back: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	// The refused confirm's message stayed queued at its position and was written with the
	// next one (a nack allows it to be delivered).
	q, _ = open()
	defer q.Close()
	var got []string
	for range 3 {
		d := getOne(t, q)
		got = append(got, string(d.Message.Body))
		q.Ack(d.ID)
	}
	if fmt.Sprint(got) != "[before during after]" {
		t.Fatalf("after a restart the queue holds %v", got)
	}
}

// On a full disk the write buffer stops growing at writeBufferMax: further publishes are
// refused with nothing buffered, and taken again once space is back.
func TestFullDiskRefusesPastWriteBuffer(t *testing.T) {
	t.Parallel()
	fsys := log.NewFullFS(nil)
	s, err := OpenLogStore(t.TempDir(), LogStoreOptions{SyncPolicy: log.SyncAlways, FlushDelay: time.Hour, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	fsys.SetFull(true)
	body := make([]byte, 64<<10)
	refused := 0
	for range 2 * writeBufferMax / len(body) {
		if _, err := q.Publish(&Message{Body: body, Persistent: true}); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("publish on a full disk: %v, want ENOSPC", err)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("a full disk refused no publish: the write buffer grows without bound")
	}
	s.wmu.Lock()
	buffered := len(s.wq)
	s.wmu.Unlock()
	if buffered > writeBufferMax+len(body)+1024 {
		t.Fatalf("%d bytes buffered on a full disk, bound %d", buffered, writeBufferMax)
	}
	fsys.SetFull(false)
	w, err := q.Publish(&Message{Body: body, Persistent: true})
	if err == nil {
		err = w.Wait(context.Background())
	}
	if err != nil {
		t.Fatalf("publish once space is back: %v", err)
	}
}

// A failed fsync is not a full disk: the kernel may have dropped the data, so the queue
// refuses every publish from then on (until reopened), however often it is retried.
func TestFailedSyncKeepsRefusing(t *testing.T) {
	t.Parallel()
	mem := log.NewMemFS()
	// Real directory for the store itself, logs in memory.
	s, err := OpenLogStore(t.TempDir(), LogStoreOptions{SyncPolicy: log.SyncAlways, FlushDelay: time.Hour, FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	q := New("q", Options{Durable: true, Store: s})
	defer q.Close()
	publish := func() error {
		w, err := q.Publish(&Message{Body: []byte("m"), Persistent: true})
		if err != nil {
			return err
		}
		return w.Wait(context.Background())
	}
	mem.FailNextSync(syscall.EIO)
	if err := publish(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("publish whose fsync fails: %v, want EIO", err)
	}
	for i := range 3 {
		if err := publish(); !errors.Is(err, log.ErrFailed) {
			t.Fatalf("publish %d after a failed fsync: %v, want log.ErrFailed", i, err)
		}
	}
}

// A durable queue opens on a full disk after a restart, read-only in effect: its messages are
// delivered, publishes are refused until space is back, then taken.
func TestOpenOnFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys := log.NewFullFS(nil)
	open := func() (*Queue, *LogStore) {
		s, err := OpenLogStore(dir, LogStoreOptions{SyncPolicy: log.SyncAlways, FS: fsys})
		if err != nil {
			t.Fatalf("open on a full disk: %v", err)
		}
		return New("q", Options{Durable: true, Store: s}), s
	}
	q, s := open()
	for _, b := range []string{"a", "b"} {
		w, err := q.Publish(&Message{Body: []byte(b), Persistent: true})
		if err == nil {
			err = w.Wait(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	settlementsWritten(t, s)
	crash(s)
	fsys.SetFull(true)
	q, _ = open()
	defer q.Close()
	if d := getOne(t, q); string(d.Message.Body) != "a" {
		t.Fatalf("first message after a restart on a full disk: %q", d.Message.Body)
	}
	w, err := q.Publish(&Message{Body: []byte("c"), Persistent: true})
	if err == nil {
		err = w.Wait(context.Background())
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("publish on a full disk: %v, want ENOSPC", err)
	}
	fsys.SetFull(false)
	w, err = q.Publish(&Message{Body: []byte("d"), Persistent: true})
	if err == nil {
		err = w.Wait(context.Background())
	}
	if err != nil {
		t.Fatalf("publish once space is back: %v", err)
	}
}
