//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !windows

package platform

// TotalMemoryBytes is unknown here: callers fall back to no memory-based limit.
func TotalMemoryBytes() (uint64, error) { return 0, ErrUnsupported }
