//go:build !unix

package platform

// RawWriteSupported is false here: callers write through net.Conn only.
const RawWriteSupported = false

// WriteNonBlocking is not implemented here; see RawWriteSupported.
func WriteNonBlocking(fd uintptr, b []byte) (int, error) { return 0, ErrUnsupported }
