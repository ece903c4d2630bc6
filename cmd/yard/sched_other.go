//go:build !linux

package main

import "errors"

// setBatchScheduling: SCHED_BATCH is Linux's (see sched_linux.go).
func setBatchScheduling() error {
	return errors.New("SCHED_BATCH is only available on Linux")
}
