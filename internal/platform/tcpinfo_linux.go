package platform

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// TCPBytes reports the bytes a TCP connection received and the bytes the peer acknowledged,
// from the kernel's TCP_INFO: counters the kernel keeps anyway, so the data path pays
// nothing for them. ok is false if sc is not a TCP socket or the kernel does not say.
func TCPBytes(sc syscall.Conn) (received, acked uint64, ok bool) {
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var info *unix.TCPInfo
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || ierr != nil {
		return 0, 0, false
	}
	return info.Bytes_received, info.Bytes_acked, true
}
