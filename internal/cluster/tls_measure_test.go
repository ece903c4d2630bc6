//go:build unix

package cluster

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
)

// TestMeasureTLSCost compares plaintext and mutual TLS transports on one workload: 64
// proposers committing 4 KiB commands on a 3-host cluster (WALs on disk, as in production).
// It reports wall time and process CPU time; run with YARD_MEASURE_CLUSTER_TLS=1.
func TestMeasureTLSCost(t *testing.T) {
	if os.Getenv("YARD_MEASURE_CLUSTER_TLS") == "" {
		t.Skip("set YARD_MEASURE_CLUSTER_TLS=1 to measure")
	}
	const total, workers = 20000, 64
	payload := strings.Repeat("x", 4096)
	run := func(name string, c *testCluster) {
		l := c.leader(1)
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		cpu0 := cpuTime()
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= total {
					if _, err := c.hosts[l].Group(1).Propose(context.Background(), []byte(payload)); err != nil {
						failed.Add(1) // a leader change under load: not counted
					}
				}
			})
		}
		wg.Wait()
		wall, cpu := time.Since(start), cpuTime()-cpu0
		t.Logf("%s: %d x 4 KiB committed in %v (%.0f/s, %.1f MB/s), process CPU %v (%.1f µs per command), %d failed",
			name, total, wall.Round(time.Millisecond), float64(total)/wall.Seconds(),
			float64(total*4096)/wall.Seconds()/1e6, cpu.Round(time.Millisecond), float64(cpu.Microseconds())/total, failed.Load())
	}
	plain := newTestCluster(t, 3, Config{}, 1)
	run("plaintext", plain)
	for _, h := range plain.hosts {
		h.Close()
	}
	plain.hosts = map[uint64]*Host{}
	ca := tlsconftest.NewCA(t, "cluster CA")
	stores := map[uint64]*tlsconf.Store{}
	for id := uint64(1); id <= 3; id++ {
		stores[id], _ = nodeStore(t, ca, id)
	}
	run("mutual TLS", newTLSCluster(t, Config{}, stores, io.Discard, 1))
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
