// Package atomicfile replaces small metadata files so that a crash at any moment leaves either
// the old content or the new, never a mix: write a temp file, fsync it, rename it over the
// target, fsync the directory (without the last step the rename itself may be lost).
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/yardmq/yard/internal/platform"
)

// Write replaces name with data atomically and durably.
func Write(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", tmp, err)
	}
	if err := platform.Fsync(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("cannot rename %s: %w", tmp, err)
	}
	return SyncDir(filepath.Dir(name))
}

// SyncDir fsyncs a directory so that creations, renames and removals in it are durable.
func SyncDir(dir string) error {
	if err := platform.SyncDir(dir); err != nil {
		return fmt.Errorf("cannot fsync dir %s: %w", dir, err)
	}
	return nil
}
