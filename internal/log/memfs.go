package log

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// MemFS is an in-memory FS for tests that injects faults and simulates crashes.
//
// Crash model (Crash): for every file it knows the content as of its last
// successful fsync ("synced") and the current content. After a crash a file holds
// its current content cut at any byte from the end of the longest common prefix of
// the two up to its full length: synced bytes survive (unless the program itself
// overwrote or truncated them), and any prefix of the unsynced writes survives.
// Directory entries (creates, renames, removes) behave like a journaling file
// system: each directory keeps the entries as of its last SyncDir plus the ordered
// list of later operations, and a crash applies any prefix of that list. fsync of a
// file does not make its name durable; SyncDir does. Directories themselves are
// durable once created.
//
// Faults: FailNextWrite makes the next write to any file write half its bytes and
// return the error; FailNextSync makes the next File.Sync fail. Like Linux after a
// failed fsync, the file's dirty data is then considered lost: later Syncs of that
// file report success but never make that data durable ("fsyncgate"). FailWriteAt,
// FailSyncAt and FailSyncDirAt arm the same faults for the n-th such call from now, so
// that a test can fail every step of a sequence in turn; Faults counts the faults fired.
type MemFS struct {
	mu        sync.Mutex
	dirs      map[string]*memDir
	failWrite error
	failSync  error
	failDir   error
	// Calls of each kind to let through before the armed fault fires.
	skipWrite, skipSync, skipDir int
	fired                        int // faults fired so far
	now                          func() time.Time
}

type memDir struct {
	entries map[string]*memInode // current
	synced  map[string]*memInode // as of the last SyncDir
	ops     []dirOp              // since the last SyncDir, in order
}

type dirOp struct {
	name string    // entry changed
	ino  *memInode // new target; nil = removed
}

type memInode struct {
	data     []byte
	synced   []byte
	poisoned bool // a Sync failed: dirty data is lost, later Syncs lie
	modTime  time.Time
}

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS {
	return &MemFS{dirs: map[string]*memDir{"/": newMemDir(), ".": newMemDir()}, now: time.Now}
}

func newMemDir() *memDir {
	return &memDir{entries: map[string]*memInode{}, synced: map[string]*memInode{}}
}

// FailNextWrite makes the next write to any file write half of its bytes and fail with err.
func (m *MemFS) FailNextWrite(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failWrite, m.skipWrite = err, 0
}

// FailWriteAt makes the n-th write from now (0: the next) to any file write half of its
// bytes and fail with err.
func (m *MemFS) FailWriteAt(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failWrite, m.skipWrite = err, n
}

// FailSyncAt makes the n-th File.Sync from now (0: the next) fail with err, losing the
// file's dirty data as FailNextSync does.
func (m *MemFS) FailSyncAt(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failSync, m.skipSync = err, n
}

// FailSyncDirAt makes the n-th SyncDir from now (0: the next) fail with err; the
// directory's changes since its last successful SyncDir stay undurable.
func (m *MemFS) FailSyncDirAt(n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failDir, m.skipDir = err, n
}

// Faults returns how many armed faults have fired.
func (m *MemFS) Faults() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fired
}

// armed says whether the fault armed by err and skip fires on this call, counting it.
func (m *MemFS) armed(err *error, skip *int) error {
	if *err == nil {
		return nil
	}
	if *skip > 0 {
		*skip--
		return nil
	}
	e := *err
	*err = nil
	m.fired++
	return e
}

// FailNextSync makes the next File.Sync fail with err (and lose the file's dirty data).
func (m *MemFS) FailNextSync(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failSync, m.skipSync = err, 0
}

// Crash returns the file system as a crash could leave it. keep(n) chooses how
// many of n unsynced units survive (0..n): bytes of a file, or operations of a
// directory. The receiver is unchanged (a process still using it writes into the void).
func (m *MemFS) Crash(keep func(n int) int) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &MemFS{dirs: map[string]*memDir{}, now: m.now}
	inodes := map[*memInode]*memInode{}
	crashInode := func(ino *memInode) *memInode {
		if c, ok := inodes[ino]; ok {
			return c
		}
		l := commonPrefix(ino.synced, ino.data)
		cut := l + clampKeep(keep, len(ino.data)-l)
		if ino.poisoned {
			cut = l // the dirty data was dropped when the fsync failed
		}
		data := append([]byte(nil), ino.data[:cut]...)
		c := &memInode{data: data, synced: append([]byte(nil), data...), modTime: ino.modTime}
		inodes[ino] = c
		return c
	}
	for path, d := range m.dirs {
		entries := map[string]*memInode{}
		for name, ino := range d.synced {
			entries[name] = ino
		}
		for _, op := range d.ops[:clampKeep(keep, len(d.ops))] {
			if op.ino == nil {
				delete(entries, op.name)
			} else {
				entries[op.name] = op.ino
			}
		}
		nd := newMemDir()
		for name, ino := range entries {
			c := crashInode(ino)
			nd.entries[name], nd.synced[name] = c, c
		}
		out.dirs[path] = nd
	}
	return out
}

func clampKeep(keep func(int) int, n int) int {
	if n <= 0 {
		return 0
	}
	return max(0, min(n, keep(n)))
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func (m *MemFS) split(name string) (*memDir, string, error) {
	name = filepath.Clean(name)
	d, ok := m.dirs[filepath.Dir(name)]
	if !ok {
		return nil, "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return d, filepath.Base(name), nil
}

func (d *memDir) set(name string, ino *memInode) {
	if ino == nil {
		delete(d.entries, name)
	} else {
		d.entries[name] = ino
	}
	d.ops = append(d.ops, dirOp{name: name, ino: ino})
}

// OpenFile implements FS.
func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, base, err := m.split(name)
	if err != nil {
		return nil, err
	}
	if _, isDir := m.dirs[filepath.Clean(name)]; isDir {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	ino, ok := d.entries[base]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		ino = &memInode{modTime: m.now()}
		d.set(base, ino)
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = ino.data[:0:0]
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	return &memFile{fs: m, ino: ino, name: filepath.Clean(name), writable: writable}, nil
}

// Remove implements FS (files and empty directories).
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = filepath.Clean(name)
	if sub, isDir := m.dirs[name]; isDir {
		if len(sub.entries) > 0 || m.hasSubdirs(name) {
			return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
		}
		delete(m.dirs, name)
		return nil
	}
	d, base, err := m.split(name)
	if err != nil {
		return err
	}
	if _, ok := d.entries[base]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	d.set(base, nil)
	return nil
}

func (m *MemFS) hasSubdirs(dir string) bool {
	for p := range m.dirs {
		if p != dir && filepath.Dir(p) == dir {
			return true
		}
	}
	return false
}

// Rename implements FS. Within one directory it is atomic across crashes.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	od, ob, err := m.split(oldname)
	if err != nil {
		return err
	}
	nd, nb, err := m.split(newname)
	if err != nil {
		return err
	}
	ino, ok := od.entries[ob]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if od == nd {
		// One journaled operation pair: record the new name first, so that a crash
		// prefix never loses both names (it may keep both, like a hard link, briefly).
		nd.set(nb, ino)
		od.set(ob, nil)
		return nil
	}
	nd.set(nb, ino)
	od.set(ob, nil)
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	d, ok := m.dirs[dir]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range d.entries {
		names = append(names, n)
	}
	for p := range m.dirs {
		if p != dir && filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	for p := dir; ; p = filepath.Dir(p) {
		if _, ok := m.dirs[p]; ok {
			break
		}
		if parent, base, err := m.split(p); err == nil {
			if _, isFile := parent.entries[base]; isFile {
				return &fs.PathError{Op: "mkdir", Path: p, Err: errors.New("not a directory")}
			}
		}
		m.dirs[p] = newMemDir()
		if p == filepath.Dir(p) {
			break
		}
	}
	return nil
}

// SyncDir implements FS.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.dirs[filepath.Clean(dir)]
	if !ok {
		return &fs.PathError{Op: "sync", Path: dir, Err: fs.ErrNotExist}
	}
	if err := m.armed(&m.failDir, &m.skipDir); err != nil {
		return &fs.PathError{Op: "sync", Path: dir, Err: err}
	}
	d.synced = map[string]*memInode{}
	for n, ino := range d.entries {
		d.synced[n] = ino
	}
	d.ops = nil
	return nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = filepath.Clean(name)
	if _, ok := m.dirs[name]; ok {
		return memInfo{name: filepath.Base(name), dir: true}, nil
	}
	d, base, err := m.split(name)
	if err != nil {
		return nil, err
	}
	ino, ok := d.entries[base]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return memInfo{name: base, size: int64(len(ino.data)), mod: ino.modTime}, nil
}

// ReadFile returns a copy of a file's current content (for tests).
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	f, err := m.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	mf := f.(*memFile)
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), mf.ino.data...), nil
}

// WriteFile replaces a file's content, durably (for tests that damage files).
func (m *MemFS) WriteFile(name string, data []byte) error {
	f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	mf := f.(*memFile)
	m.mu.Lock()
	defer m.mu.Unlock()
	mf.ino.data = append([]byte(nil), data...)
	mf.ino.synced = append([]byte(nil), data...)
	d, base, _ := m.split(name)
	d.synced[base] = mf.ino
	return nil
}

type memInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// memFile is an open file of a MemFS. It keeps its inode after Remove, like a
// Unix file descriptor.
type memFile struct {
	fs       *MemFS
	ino      *memInode
	name     string
	writable bool
	off      int64
	closed   bool
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if !f.writable {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: errors.New("file opened read-only")}
	}
	var err error
	if ferr := f.fs.armed(&f.fs.failWrite, &f.fs.skipWrite); ferr != nil {
		err = &fs.PathError{Op: "write", Path: f.name, Err: ferr}
		p = p[:len(p)/2]
	}
	if need := off + int64(len(p)); need > int64(len(f.ino.data)) {
		f.ino.data = append(f.ino.data, make([]byte, need-int64(len(f.ino.data)))...)
	}
	copy(f.ino.data[off:], p)
	f.ino.modTime = f.fs.now()
	return len(p), err
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if ferr := f.fs.armed(&f.fs.failSync, &f.fs.skipSync); ferr != nil {
		err := &fs.PathError{Op: "sync", Path: f.name, Err: ferr}
		f.ino.poisoned = true
		return err
	}
	if !f.ino.poisoned {
		f.ino.synced = append(f.ino.synced[:0], f.ino.data...)
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	if size < 0 {
		return fmt.Errorf("cannot truncate %s: negative size", f.name)
	}
	if size <= int64(len(f.ino.data)) {
		f.ino.data = f.ino.data[:size:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	return int64(len(f.ino.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return os.ErrClosed
	}
	f.closed = true
	return nil
}
