//go:build !linux

package main

// setBatchScheduling does nothing: SCHED_BATCH is Linux's (see sched_linux.go), and other
// systems keep their default policy without a warning at every start.
func setBatchScheduling() error { return nil }
