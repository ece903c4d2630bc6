//go:build unix && !darwin

package platform

// SyncDir makes the entries of directory dir (creates, renames, removes) durable.
func SyncDir(dir string) error { return syncDirFsync(dir) }
