//go:build !linux

package platform

import "syscall"

// SendfileSupported is false here: callers copy file bytes through user space. (macOS and
// the BSDs have a sendfile(2) of their own, with other semantics; it is not used yet.)
const SendfileSupported = false

// Sendfile is not implemented here; see SendfileSupported.
func Sendfile(sc syscall.Conn, in uintptr, off, n int64) error { return ErrUnsupported }
