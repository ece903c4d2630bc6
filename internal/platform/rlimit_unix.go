//go:build unix

package platform

import "syscall"

// OpenFileLimit returns how many files the process may have open (the soft RLIMIT_NOFILE,
// which Go raises to the hard limit at start-up).
func OpenFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return uint64(rl.Cur), nil
}
