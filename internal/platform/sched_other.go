//go:build !linux

package platform

// SetBatchScheduling does nothing: SCHED_BATCH is Linux's (see sched_linux.go), and other
// systems keep their default policy without a warning at every start.
func SetBatchScheduling() error { return nil }
