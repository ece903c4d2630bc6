//go:build linux

package platform

import "golang.org/x/sys/unix"

// TotalMemoryBytes returns the machine's physical memory.
func TotalMemoryBytes() (uint64, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0, err
	}
	return uint64(si.Totalram) * uint64(si.Unit), nil
}
