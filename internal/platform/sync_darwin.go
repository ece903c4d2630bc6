//go:build darwin

package platform

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Fsync makes f's data durable. On macOS fsync(2) only moves the data to the drive, whose
// volatile write cache may lose it at a power cut; fcntl(F_FULLFSYNC) also flushes that
// cache. File systems that do not support it (SMB, some FUSE ones) answer ENOTSUP or
// ENOTTY and get fsync(2), the best they offer. (Go's own File.Sync does the same since
// Go 1.12; doing it here keeps the promise independent of that detail.)
func Fsync(f *os.File) error {
	for {
		_, err := unix.FcntlInt(f.Fd(), unix.F_FULLFSYNC, 0)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EINVAL):
			return f.Sync()
		}
		return &os.PathError{Op: "fcntl F_FULLFSYNC", Path: f.Name(), Err: err}
	}
}

// SyncDir makes the entries of directory dir (creates, renames, removes) durable.
func SyncDir(dir string) error { return syncDirFsync(dir) }
