//go:build linux

package platform

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// SendfileSupported says whether Sendfile works here; callers copy through user space
// otherwise.
const SendfileSupported = true

// Sendfile copies n bytes at off of the file with descriptor in to the socket sc with
// sendfile(2), waiting for the socket to be writable through the runtime poller (the
// socket is non-blocking). The file's own offset is not used or moved.
func Sendfile(sc syscall.Conn, in uintptr, off, n int64) error {
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(out uintptr) bool {
		for n > 0 {
			w, err := unix.Sendfile(int(out), int(in), &off, int(min(n, 1<<30)))
			if w > 0 {
				n -= int64(w)
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until writable, then call again
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				serr = err
				return true
			case w == 0:
				serr = io.ErrUnexpectedEOF // the file is shorter than the range
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}
