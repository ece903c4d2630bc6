package log

import (
	"io/fs"
	"os"
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
}

// NewFullFS wraps fsys (nil: the real file system).
func NewFullFS(fsys FS) *FullFS {
	if fsys == nil {
		fsys = OSFS{}
	}
	return &FullFS{FS: fsys}
}

// SetFull fills the disk (true) or frees space (false).
func (f *FullFS) SetFull(full bool) { f.full.Store(full) }

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
	if f.fs.full.Load() && len(p) > 0 {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.full.Load() && len(p) > 0 {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.WriteAt(p, off)
}
