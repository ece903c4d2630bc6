package platform

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestTotalMemoryAndDiskFree(t *testing.T) {
	t.Parallel()
	mem, err := TotalMemoryBytes()
	if err != nil || mem < 64<<20 {
		t.Fatalf("TotalMemoryBytes = %d, %v", mem, err)
	}
	free, err := DiskFreeBytes(t.TempDir())
	if err != nil || free == 0 {
		t.Fatalf("DiskFreeBytes = %d, %v", free, err)
	}
	if _, err := DiskFreeBytes(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("DiskFreeBytes of a missing path: no error")
	}
}

// TestLockFileExcludesASecondOpen: a second open of the lock file (as a second process would
// do) cannot take the lock while the first holds it, and can once it is closed.
func TestLockFileExcludesASecondOpen(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := open()
	if err := LockFile(a); err != nil {
		t.Fatal(err)
	}
	b := open()
	defer b.Close()
	if err := LockFile(b); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	a.Close()
	if err := LockFile(b); err != nil {
		t.Fatalf("lock after the holder closed: %v", err)
	}
}

func TestFsyncAndSyncDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := Fsync(f); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

// TestSendfileSendsTheRange sends a range of a file to a loopback TCP connection.
func TestSendfileSendsTheRange(t *testing.T) {
	t.Parallel()
	if !SendfileSupported {
		t.Skip("no sendfile here")
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, data, 0o600); err != nil {
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
		c.Close()
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const off, n = 1000, 900_000
	if err := Sendfile(c.(syscall.Conn), f.Fd(), off, n); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if b := <-got; !bytes.Equal(b, data[off:off+n]) {
		t.Fatalf("received %d bytes, want the %d of the range", len(b), n)
	}
	if err := Sendfile(mustDial(t, ln), f.Fd(), int64(len(data))-10, 20); err == nil {
		t.Fatal("Sendfile past the end of the file: no error")
	}
}

func mustDial(t *testing.T, ln net.Listener) syscall.Conn {
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(syscall.Conn)
}

// TestOpenFileSharesDeletion: a file opened with OpenFile can be renamed over and removed
// while open, and stays readable through the open file (Windows needs FILE_SHARE_DELETE).
func TestOpenFileSharesDeletion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := filepath.Join(dir, "seg")
	f, err := OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	if _, err := OpenFile(filepath.Join(dir, "missing"), os.O_RDONLY, 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, name); err != nil {
		t.Fatalf("rename over an open file: %v", err)
	}
	if err := os.Remove(name); err != nil {
		t.Fatalf("remove of an open file: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "data" {
		t.Fatalf("read after removal: %q %v", buf, err)
	}
	g, err := OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("recreate after removal: %v", err)
	}
	if n, _ := g.Seek(0, 2); n != 0 {
		t.Fatalf("recreated file holds %d bytes", n)
	}
	g.Close()
}
