package log

import (
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// FullFS wraps an FS as a disk that can fill up, for tests of what a full disk does above
// the log (queues, front ends, start-up): while Full is on, every write to a file writes
// nothing and fails with ENOSPC, as on a full file system; creating, opening, renaming and
// removing files, reading, truncating and fsync still work. Unlike MemFS it can wrap the
// real file system, so the rest of a data directory stays on disk.
type FullFS struct {
	FS
	full atomic.Bool

	mu      sync.Mutex
	limited bool  // SetSpace was called: at most space more bytes are written
	space   int64 // guarded by mu
}

// NewFullFS wraps fsys (nil: the real file system).
func NewFullFS(fsys FS) *FullFS {
	if fsys == nil {
		fsys = OSFS{}
	}
	return &FullFS{FS: fsys}
}

// SetFull fills the disk (true) or frees space (false, which also lifts SetSpace's limit).
func (f *FullFS) SetFull(full bool) {
	f.full.Store(full)
	if !full {
		f.mu.Lock()
		f.limited = false
		f.mu.Unlock()
	}
}

// SetSpace leaves n bytes free: the write that reaches the limit writes what fits (a
// partial write, as a real full disk does) and fails with ENOSPC, as do the writes after
// it, until SetFull(false).
func (f *FullFS) SetSpace(n int64) {
	f.mu.Lock()
	f.limited, f.space = true, n
	f.mu.Unlock()
}

// take is how many of n bytes fit on the disk (and uses them up).
func (f *FullFS) take(n int) int {
	if f.full.Load() {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.limited {
		return n
	}
	k := int(min(int64(n), f.space))
	f.space -= int64(k)
	return k
}

// OpenFile implements FS.
func (f *FullFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f}, nil
}

type fullFile struct {
	File
	fs *FullFS
}

func (f *fullFile) Write(p []byte) (int, error) {
	k := f.fs.take(len(p))
	if k == len(p) {
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:k])
	if err == nil {
		err = &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	k := f.fs.take(len(p))
	if k == len(p) {
		return f.File.WriteAt(p, off)
	}
	n, err := f.File.WriteAt(p[:k], off)
	if err == nil {
		err = &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}
