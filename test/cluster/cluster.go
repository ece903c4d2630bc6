package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

// Cluster is n `yard serve` processes whose every directed link goes through a Link proxy.
type Cluster struct {
	t     testing.TB
	Nodes []*harness.Yard // Nodes[i] is node i+1
	links map[[2]int]*Link
	// Tmpfs is the node (1..n) whose data dir is a 64 MiB tmpfs (FillDisk works on it), 0: none.
	Tmpfs int
}

// Options adjust a cluster.
type Options struct {
	// TmpfsNode mounts a 64 MiB tmpfs as that node's data dir (needs root and mount rights;
	// when mounting fails the cluster runs without it and Cluster.Tmpfs is 0).
	TmpfsNode int
}

// Start runs n nodes on loopback with free ports and separate data dirs.
func Start(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, links: map[[2]int]*Link{}}
	real := make([]string, n)
	for i := range real {
		real[i] = harness.ReservePort(t)
	}
	for from := 1; from <= n; from++ {
		for to := 1; to <= n; to++ {
			if from == to {
				continue
			}
			l, err := newLink(from, to, real[to-1])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.Close)
			c.links[[2]int{from, to}] = l
		}
	}
	for id := 1; id <= n; id++ {
		var peers []string
		for p := 1; p <= n; p++ {
			addr := real[p-1]
			if p != id {
				addr = c.links[[2]int{id, p}].Addr()
			}
			peers = append(peers, fmt.Sprintf("%d=%s", p, addr))
		}
		opts := []harness.Option{harness.WithArgs("--node-id", fmt.Sprint(id),
			"--cluster-listen", real[id-1], "--peers", strings.Join(peers, ","))}
		if id == o.TmpfsNode {
			if dir, ok := mountTmpfs(t); ok {
				c.Tmpfs = id
				opts = append(opts, harness.WithDataDir(dir))
			}
		}
		y := harness.Start(t, opts...)
		t.Cleanup(y.Resume) // before harness's Stop (cleanups run last-in first-out)
		c.Nodes = append(c.Nodes, y)
	}
	return c
}

// mountTmpfs mounts a 64 MiB tmpfs on a new directory; its unmount is registered before the
// process that uses it starts, so it runs after that process stopped.
func mountTmpfs(t testing.TB) (string, bool) {
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Logf("no full-disk fault: cannot mount a tmpfs: %v %s", err, out)
		return "", false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("cannot unmount %s: %v %s", dir, err, out)
		}
	})
	return filepath.Join(dir, "data"), true
}

// Node is node id (1..n).
func (c *Cluster) Node(id int) *harness.Yard { return c.Nodes[id-1] }

// Seeds are every node's Kafka address.
func (c *Cluster) Seeds() []string {
	var s []string
	for _, y := range c.Nodes {
		s = append(s, y.KafkaAddr)
	}
	return s
}

// Link is the directed link from -> to.
func (c *Cluster) Link(from, to int) *Link { return c.links[[2]int{from, to}] }

// Isolate drops every link to and from node id.
func (c *Cluster) Isolate(id int) {
	for k, l := range c.links {
		if k[0] == id || k[1] == id {
			l.Drop()
		}
	}
}

// MuteOutbound drops every link from node id (it still hears the others: one-way).
func (c *Cluster) MuteOutbound(id int) {
	for k, l := range c.links {
		if k[0] == id {
			l.Drop()
		}
	}
}

// DelayNode adds latency d to every link to and from node id.
func (c *Cluster) DelayNode(id int, d time.Duration) {
	for k, l := range c.links {
		if k[0] == id || k[1] == id {
			l.Delay(d)
		}
	}
}

// HealLinks heals every link.
func (c *Cluster) HealLinks() {
	for _, l := range c.links {
		l.Heal()
	}
}

// Wipe kills node id and empties its data directory (keeping a tmpfs mount point).
func (c *Cluster) Wipe(id int) {
	y := c.Node(id)
	y.Kill()
	ents, err := os.ReadDir(y.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		c.t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(y.DataDir, e.Name())); err != nil {
			c.t.Fatal(err)
		}
	}
}

// fillerName is the file FillDisk grows in the tmpfs node's data dir.
const fillerName = "zz-disk-filler"

// FillDisk fills the tmpfs node's file system up to the last byte.
func (c *Cluster) FillDisk() error {
	if c.Tmpfs == 0 {
		return errors.New("no tmpfs node")
	}
	f, err := os.OpenFile(filepath.Join(filepath.Dir(c.Node(c.Tmpfs).DataDir), fillerName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			return err
		}
	}
	for _, n := range []int{64 << 10, 4 << 10, 1} { // the last pages too
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				break
			}
		}
	}
	return nil
}

// FreeDisk removes what FillDisk wrote.
func (c *Cluster) FreeDisk() {
	if c.Tmpfs != 0 {
		os.Remove(filepath.Join(filepath.Dir(c.Node(c.Tmpfs).DataDir), fillerName))
	}
}
