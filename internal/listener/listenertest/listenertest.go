// Package listenertest has a fault-injecting net.Listener for the tests of the front ends
// that accept connections: it fails Accept with the errors a loaded server sees (EMFILE,
// ENFILE, ECONNABORTED) without exhausting the test process's descriptors.
package listenertest

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// FaultListener fails its next Fail Accepts with AcceptError(errno), then accepts normally.
type FaultListener struct {
	net.Listener

	mu    sync.Mutex // guards fails, errno, calls
	fails int
	errno syscall.Errno
	calls int
}

// New wraps ln.
func New(ln net.Listener) *FaultListener { return &FaultListener{Listener: ln} }

// Fail makes the next n Accepts fail with errno.
func (f *FaultListener) Fail(n int, errno syscall.Errno) {
	f.mu.Lock()
	f.fails, f.errno = n, errno
	f.mu.Unlock()
}

// Calls is the number of Accepts so far.
func (f *FaultListener) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Accept fails as told, or accepts.
func (f *FaultListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	f.calls++
	if f.fails > 0 {
		f.fails--
		errno := f.errno
		f.mu.Unlock()
		return nil, AcceptError(errno)
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

// AcceptError is the error net.TCPListener.Accept returns when accept4(2) fails with errno.
func AcceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}
