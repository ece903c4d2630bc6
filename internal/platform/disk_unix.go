//go:build linux || darwin || freebsd || netbsd || openbsd

package platform

import "golang.org/x/sys/unix"

// DiskFreeBytes returns the bytes available to an unprivileged user on the file system
// holding path.
func DiskFreeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
