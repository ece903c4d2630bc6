//go:build !windows

package platform

import "os"

// OpenFile is os.OpenFile: on Unix an open file can be renamed over and removed.
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
