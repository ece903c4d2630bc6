//go:build unix

package platform

import "golang.org/x/sys/unix"

// RawWriteSupported says whether WriteNonBlocking works here.
const RawWriteSupported = true

// WriteNonBlocking is write(2) on a non-blocking socket descriptor (from
// syscall.RawConn.Write): it returns what the socket took now, possibly nothing.
func WriteNonBlocking(fd uintptr, b []byte) (int, error) { return unix.Write(int(fd), b) }
