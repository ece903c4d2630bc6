//go:build darwin || freebsd || netbsd || openbsd

package platform

import "golang.org/x/sys/unix"

// TotalMemoryBytes returns the machine's physical memory (sysctl hw.memsize on macOS,
// hw.physmem on the BSDs).
func TotalMemoryBytes() (uint64, error) {
	name := "hw.physmem"
	if isDarwin {
		name = "hw.memsize"
	}
	return unix.SysctlUint64(name)
}
