package log

import (
	"fmt"
	"os"
	"sync"
)

// FileCache bounds how many segment files the logs sharing it keep open. A topic of
// 10,000 partitions would otherwise hold 10,000 descriptors open for its active segments
// alone, plus one per rolled segment ever read, and exhaust the process's limit.
//
// Files are opened on first use and stay open while they are used again; when more than
// maxOpenFiles are open, the least recently used one that nobody is using is closed. Every
// use pins the file (acquire ... release): an append's write, an fsync, a scan, and a
// ReadResult until Release, so that a range handed to sendfile is never closed under it.
// When every open file is pinned the cache goes over its bound rather than fail; it comes
// back under it as pins are released and files are used again.
//
// Closing a file loses nothing: fsync works on the file, not on a descriptor, so the
// syncer's next fsync through a reopened descriptor flushes what was written through the
// closed one (Linux reports a write-back error that nobody has seen yet to the next fsync on
// any descriptor of the file, since 4.16). What is unsynced is tracked per segment by the
// log (its durable point and its list of unsynced rolled segments), never per descriptor.
//
// Index files are not cached: they are opened, written and closed by each flush.
//
// One mutex guards the list and the file fields of every segment's cacheEntry; it is a leaf
// lock (nothing is locked, opened or closed under it) and is held for a few pointer updates.
type FileCache struct {
	maxOpenFiles int

	mu         sync.Mutex
	open       int         // entries holding an open file
	head, tail *cacheEntry // open entries, most recently used first
	opens      int64       // files opened, for tests and metrics
	closes     int64       // files closed to stay under the bound
}

// DefaultMaxOpenSegmentFiles is the bound of a cache made by NewFileCache(0): well under the
// descriptor limits of common systems (Go raises the soft limit to the hard one at start,
// commonly 524,288 or more on Linux, 10,240 or more on macOS) while leaving the rest for
// connections, and large enough that a few hundred busy partitions never reopen files.
const DefaultMaxOpenSegmentFiles = 1024

// NewFileCache returns a cache that keeps at most maxOpenFiles segment files open (0 or
// less: DefaultMaxOpenSegmentFiles).
func NewFileCache(maxOpenFiles int) *FileCache {
	if maxOpenFiles <= 0 {
		maxOpenFiles = DefaultMaxOpenSegmentFiles
	}
	return &FileCache{maxOpenFiles: maxOpenFiles}
}

// MaxOpenFiles returns the cache's bound.
func (c *FileCache) MaxOpenFiles() int { return c.maxOpenFiles }

// Stats returns how many files are open now, how many were opened in all, and how many
// were closed to stay under the bound.
func (c *FileCache) Stats() (open int, opened, evicted int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.opens, c.closes
}

// cacheEntry is a segment's place in the cache; its fields are guarded by FileCache.mu.
type cacheEntry struct {
	file       File // nil: not open
	pins       int
	prev, next *cacheEntry
	closed     bool // the segment is gone: no more opens
	// sticky: never evicted (a segment replaced by a cleaned one, whose name now holds other
	// data: its file stays open until its last reference goes).
	sticky bool
}

// keepOpen opens s's file if needed and keeps it open until the segment is closed for good.
func (c *FileCache) keepOpen(s *segment) error {
	if _, err := c.acquire(s); err != nil {
		return err
	}
	c.mu.Lock()
	s.cache.sticky = true
	c.mu.Unlock()
	c.release(s)
	return nil
}

// acquire returns s's .log file, opened if needed, pinned until release.
func (c *FileCache) acquire(s *segment) (File, error) {
	e := &s.cache
	c.mu.Lock()
	if e.closed {
		c.mu.Unlock()
		panic("BUG: use of a closed segment " + s.path(".log"))
	}
	if e.file != nil {
		e.pins++
		c.moveToFrontLocked(e)
		f := e.file
		c.mu.Unlock()
		return f, nil
	}
	e.pins++ // keeps the entry from being closed for good while we open
	c.mu.Unlock()
	f, err := s.fsys.OpenFile(s.path(".log"), os.O_RDWR, 0)
	if err != nil {
		c.mu.Lock()
		e.pins--
		c.mu.Unlock()
		return nil, fmt.Errorf("cannot open segment: %w", err)
	}
	return c.install(e, f), nil
}

// install makes f the open file of e (pinned once by the caller already), unless another
// acquirer installed one first, and closes what the bound pushes out.
func (c *FileCache) install(e *cacheEntry, f File) File {
	var extra File
	c.mu.Lock()
	if e.file != nil {
		extra, f = f, e.file
		c.moveToFrontLocked(e)
	} else {
		e.file = f
		c.open++
		c.opens++
		c.pushFrontLocked(e)
	}
	victims := c.evictLocked()
	c.mu.Unlock()
	if extra != nil {
		_ = extra.Close()
	}
	for _, v := range victims {
		_ = v.Close()
	}
	return f
}

// insert adds a file just created for s (a new segment), pinned by nobody.
func (c *FileCache) insert(s *segment, f File) {
	e := &s.cache
	c.mu.Lock()
	e.pins++
	c.mu.Unlock()
	c.install(e, f)
	c.release(s)
}

// release drops a pin taken by acquire.
func (c *FileCache) release(s *segment) {
	e := &s.cache
	c.mu.Lock()
	e.pins--
	if e.pins < 0 {
		c.mu.Unlock()
		panic("BUG: file cache pin count below zero for " + s.path(".log"))
	}
	var victims []File
	if c.open > c.maxOpenFiles && e.pins == 0 {
		victims = c.evictLocked()
	}
	c.mu.Unlock()
	for _, v := range victims {
		_ = v.Close()
	}
}

// close closes s's file for good (the segment's last reference is gone).
func (c *FileCache) close(s *segment) {
	e := &s.cache
	c.mu.Lock()
	if e.pins > 0 {
		c.mu.Unlock()
		panic("BUG: closing a segment whose file is pinned: " + s.path(".log"))
	}
	f := e.file
	if f != nil {
		c.removeLocked(e)
	}
	e.closed = true
	c.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
}

// evictLocked takes the least recently used unpinned files out while the cache is over its
// bound and returns them to be closed (outside the lock).
func (c *FileCache) evictLocked() []File {
	var victims []File
	for e := c.tail; e != nil && c.open > c.maxOpenFiles; {
		prev := e.prev
		if e.pins == 0 && !e.sticky {
			victims = append(victims, e.file)
			c.removeLocked(e)
			c.closes++
		}
		e = prev
	}
	return victims
}

func (c *FileCache) removeLocked(e *cacheEntry) {
	c.unlinkLocked(e)
	e.file = nil
	c.open--
}

func (c *FileCache) unlinkLocked(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *FileCache) pushFrontLocked(e *cacheEntry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *FileCache) moveToFrontLocked(e *cacheEntry) {
	if c.head == e {
		return
	}
	c.unlinkLocked(e)
	c.pushFrontLocked(e)
}
