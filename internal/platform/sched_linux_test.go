//go:build linux

package platform

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBatchSchedulingCoversEveryThread: after SetBatchScheduling every thread of the process
// is under SCHED_BATCH with its nice value kept, and threads created afterwards inherit it.
func TestBatchSchedulingCoversEveryThread(t *testing.T) {
	before, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetBatchScheduling(); err != nil {
		t.Fatal(err)
	}
	// New threads: goroutines locked to their threads while others are locked too force the
	// runtime to start more.
	var wg, locked sync.WaitGroup
	release := make(chan struct{})
	for range 4 {
		wg.Add(1)
		locked.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			locked.Done()
			<-release
		}()
	}
	defer func() { close(release); wg.Wait() }()
	locked.Wait()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // exited
		}
		if attr.Policy != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d, want SCHED_BATCH (%d)", tid, attr.Policy, unix.SCHED_BATCH)
		}
		if attr.Nice != before.Nice {
			t.Errorf("thread %d has nice %d, want %d as before", tid, attr.Nice, before.Nice)
		}
	}
	if len(tasks) < 5 {
		t.Fatalf("only %d threads: the test did not start new ones", len(tasks))
	}
}
