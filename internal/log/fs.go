package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/yardmq/yard/internal/platform"
)

// FS is the file-system seam of the log. OSFS is the real one; MemFS is an
// in-memory one that injects faults and simulates crashes for tests.
// Paths are slash- or OS-separated paths as produced by filepath.Join.
type FS interface {
	// OpenFile opens a file with os.OpenFile flags (O_RDONLY, O_RDWR, O_CREATE, O_EXCL, O_TRUNC).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	// ReadDir returns the sorted names of the entries in dir (files and directories).
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
	// SyncDir makes the directory's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
	Stat(name string) (os.FileInfo, error)
}

// File is an open file of an FS. Ranges returned by Log.Read carry a File; the OS
// implementation also has Fd() uintptr so that callers can sendfile from it.
type File interface {
	io.ReaderAt
	io.Writer
	io.WriterAt
	Sync() error
	Truncate(size int64) error
	Close() error
	// Size returns the current length of the file.
	Size() (int64, error)
	Name() string
}

// OSFS is the real file system.
type OSFS struct{}

// OSFile is a File of OSFS; it embeds *os.File, so Fd() is available for sendfile.
type OSFile struct{ *os.File }

// Size returns the file's length from fstat.
func (f OSFile) Size() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Sync makes the file's data durable (F_FULLFSYNC on macOS: see platform.Fsync).
func (f OSFile) Sync() error { return platform.Fsync(f.File) }

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := platform.OpenFile(name, flag, perm) // shared for deletion on Windows too
	if err != nil {
		return nil, err
	}
	return OSFile{f}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }

// Stat implements FS.
func (OSFS) Stat(name string) (os.FileInfo, error) { return os.Stat(name) }

// SyncDir implements FS by fsyncing the directory itself (nothing on Windows: see
// platform.SyncDir).
func (OSFS) SyncDir(dir string) error { return platform.SyncDir(dir) }

// writeFileAtomic replaces name with data durably: write a temp file, fsync it,
// rename it over name, fsync the directory. A crash leaves either the old or the
// new content, never a mix (the content also carries its own checksum).
func writeFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("cannot rename %s: %w", tmp, err)
	}
	if err := fsys.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("cannot sync directory of %s: %w", name, err)
	}
	return nil
}

// readFileAll reads a whole small file; a missing file gives os.ErrNotExist.
func readFileAll(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// Permissions of the files and directories a log creates: records are users' data, for the
// broker's account only (internal/datadir uses the same for everything else yard writes).
const (
	filePerm os.FileMode = 0o600
	dirPerm  os.FileMode = 0o700
)
