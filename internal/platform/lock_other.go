//go:build !unix && !windows

package platform

import "os"

// LockFile is not implemented here: a second process on the same directory is not refused.
func LockFile(f *os.File) error { return nil }
