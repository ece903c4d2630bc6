//go:build !unix

package platform

// SyncDir does nothing: Windows cannot flush a directory handle (FlushFileBuffers on one
// fails), and NTFS journals its metadata, so creates and renames survive a crash once the
// file system has committed them.
func SyncDir(dir string) error { return nil }
