//go:build unix

package amqp

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the test process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
