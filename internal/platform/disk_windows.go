//go:build windows

package platform

import "golang.org/x/sys/windows"

// DiskFreeBytes returns the bytes available to the caller on the volume holding path.
func DiskFreeBytes(path string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return avail, nil
}
