// Package platform holds what differs between the operating systems yard runs on, behind
// small functions with one implementation per system (build tags) and a portable fallback:
//
//   - TotalMemoryBytes and DiskFreeBytes feed the AMQP resource alarms;
//   - SetBatchScheduling puts the process under Linux's SCHED_BATCH (a no-op elsewhere);
//   - Sendfile copies file bytes to a TCP socket in the kernel (Linux; elsewhere callers copy
//     through user space, see SendfileSupported);
//   - WriteNonBlocking writes to a socket without waiting (Unix; elsewhere RawWriteSupported
//     is false and callers write from a goroutine that may block);
//   - OpenFileLimit says how many files the process may have open (Unix), for sizing caches;
//   - LockFile takes the exclusive, non-blocking lock that keeps a second process out of a
//     data directory (flock on Unix, LockFileEx on Windows);
//   - OpenFile opens a file that others may remove or rename over while it is open, as on
//     Unix (Windows needs FILE_SHARE_DELETE for that, which os.OpenFile does not ask for);
//   - Fsync and SyncDir make data and directory entries durable. On macOS fsync(2) only hands
//     the data to the drive, whose volatile cache may still lose it at a power cut, so Fsync
//     uses fcntl(F_FULLFSYNC) there: an acknowledgement means durable on every system.
//     Windows cannot flush a directory handle (NTFS journals its metadata), so SyncDir does
//     nothing there.
//
// Only Linux is run by the test suite; `make test` compiles and vets the package (and the
// whole module) for darwin/amd64, darwin/arm64 and windows/amd64 too.
package platform

import "errors"

// ErrUnsupported is returned by functions that have no implementation on this system.
var ErrUnsupported = errors.New("not supported on this operating system")

// ErrLocked is returned by LockFile when another process holds the lock.
var ErrLocked = errors.New("locked by another process")
