//go:build !linux

package platform

import "syscall"

// TCPBytes is unsupported here: ok is false.
func TCPBytes(sc syscall.Conn) (received, acked uint64, ok bool) { return 0, 0, false }
