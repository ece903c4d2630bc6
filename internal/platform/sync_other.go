//go:build !darwin

package platform

import "os"

// Fsync makes f's data durable: fsync(2) on Linux and the other Unixes (it flushes the
// drive's cache too), FlushFileBuffers on Windows.
func Fsync(f *os.File) error { return f.Sync() }
