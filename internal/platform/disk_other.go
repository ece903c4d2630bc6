//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !windows

package platform

// DiskFreeBytes is unknown here: callers skip the disk-based limit.
func DiskFreeBytes(path string) (uint64, error) { return 0, ErrUnsupported }
