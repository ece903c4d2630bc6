package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fault kinds.
const (
	faultKill      = "kill"      // SIGKILL, restart on the same data dir
	faultPause     = "pause"     // SIGSTOP ... SIGCONT
	faultIsolate   = "partition" // every link to and from one node dropped
	faultOneWay    = "one-way"   // every link from one node dropped, links to it open
	faultDelay     = "delay"     // 150 ms added to every link of one node
	faultEmptyDir  = "empty-dir" // SIGKILL, data dir emptied, restart (it rejoins: TestClusterEmptyDataDir)
	faultFullDisk  = "full-disk" // the tmpfs node's file system filled up; healed by freeing it (no restart)
	livenessBound  = 60 * time.Second
	topicPartition = 3
	// porcupineMax is the most operations of one partition porcupine cross-checks (its search
	// keeps a bitset per linearized prefix: 20,000 operations take ~50 MB).
	porcupineMax = 20000
)

// defaultFaults are the kinds a run draws from unless YARD_CLUSTER_FAULTS names others.
var defaultFaults = []string{faultKill, faultPause, faultIsolate, faultOneWay, faultDelay, faultFullDisk, faultEmptyDir}

// createTopic creates topic with n partitions through any node, retrying while the
// metadata group has no leader, and waits for every partition's leader.
func createTopic(t *testing.T, c *Cluster, topic string, n int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(livenessBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := adm.CreateTopic(ctx, n, -1, nil, topic)
		cancel()
		if err == nil {
			err = r.Err
		}
		if err == nil || strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cannot create %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// faultRun is one run of rounds against one cluster and its producers.
type faultRun struct {
	t     *testing.T
	c     *Cluster
	topic string
	rec   *Recorder
	rng   *rand.Rand
	unav  map[string]time.Duration
	count map[string]int
}

// inject applies fault kind to node id and returns the function that heals it.
func (f *faultRun) inject(kind string, id int) func() {
	c := f.c
	y := c.Node(id)
	switch kind {
	case faultKill:
		y.Kill()
		return y.Restart
	case faultPause:
		y.Pause()
		return y.Resume
	case faultIsolate:
		c.Isolate(id)
		return c.HealLinks
	case faultOneWay:
		c.MuteOutbound(id)
		return c.HealLinks
	case faultDelay:
		c.DelayNode(id, 150*time.Millisecond)
		return c.HealLinks
	case faultEmptyDir:
		c.Wipe(id)
		return y.Restart
	case faultFullDisk:
		if err := c.FillDisk(); err != nil {
			f.t.Fatalf("cannot fill the disk: %v", err)
		}
		// The node's Raft host stalls and retries; it serves again once space is freed
		// (TestClusterFullDiskRecovers), without a restart.
		return c.FreeDisk
	}
	panic("BUG: unknown fault " + kind)
}

// round injects one fault for a while under load, heals it and waits until a record is
// acknowledged again on every partition; it returns the longest time a partition went without
// an acknowledgement, or an error naming the partitions still silent livenessBound after
// healing (a stuck group).
func (f *faultRun) round(kind string, id int, hold time.Duration) (time.Duration, error) {
	f.t.Helper()
	start := time.Now()
	heal := f.inject(kind, id)
	time.Sleep(hold) // the fault's duration is the point here, not a wait for a condition
	heal()
	healed := time.Now()
	for {
		silent := f.rec.Silent(topicPartition, healed)
		if len(silent) == 0 {
			break
		}
		if time.Since(healed) > livenessBound {
			return f.rec.LongestGap(topicPartition, start, time.Now()), fmt.Errorf("%s of node %d: partitions %v: no record acknowledged within %v of healing", kind, id, silent, livenessBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if kind == faultEmptyDir {
		if err := f.waitRepaired(id, healed); err != nil {
			return f.rec.LongestGap(topicPartition, start, time.Now()), fmt.Errorf("%s of node %d: %w", kind, id, err)
		}
	}
	return f.rec.LongestGap(topicPartition, start, time.Now()), nil
}

// waitRepaired waits until node id, restarted with an empty data dir, knows the topic again
// (its catalog caught up through the metadata group) and every partition's leader lists it
// in sync (a member reset after losing its log counts only once it replicates anew), so that
// the next round does not take a second node's data while the first is still being restored
// (two members losing their logs at once is TestClusterTwoWipes).
func (f *faultRun) waitRepaired(id int, since time.Time) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.c.Seeds()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var missing []int32
	for time.Since(since) < livenessBound {
		missing = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := metadataFrom(ctx, cl, int32(id), f.topic)
		if err != nil || len(md.Partitions) < topicPartition {
			cancel()
			missing = []int32{-1}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, p := range md.Partitions {
			lmd, err := metadataFrom(ctx, cl, p.Leader, f.topic)
			ok := false
			if err == nil {
				for _, lp := range lmd.Partitions {
					if lp.Partition == p.Partition && lp.Leader == p.Leader && slices.Contains(lp.ISR, int32(id)) {
						ok = true
					}
				}
			}
			if !ok {
				missing = append(missing, p.Partition)
			}
		}
		cancel()
		if len(missing) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("node %d not back in sync within %v of healing (partitions %v; -1: it does not know the topic)", id, livenessBound, missing)
}

// metadataFrom is broker node's own Metadata answer for topic, which must name it.
func metadataFrom(ctx context.Context, cl *kgo.Client, node int32, topic string) (kmsg.MetadataResponseTopic, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		return kmsg.MetadataResponseTopic{}, err
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		return kmsg.MetadataResponseTopic{}, fmt.Errorf("node %d does not know %s", node, topic)
	}
	return resp.Topics[0], nil
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestClusterFaults runs rounds of random faults against 3 nodes while three producers (two
// idempotent, one not) write to a 3-partition topic with acks=all; after healing it reads
// everything back and checks the acknowledgements. YARD_CLUSTER_ROUNDS sets the number of
// rounds (default 3, the CI version), YARD_CLUSTER_SEED the faults' seed, YARD_CLUSTER_FAULTS a
// comma-separated subset of the kinds, YARD_CLUSTER_LOGS a directory that keeps the nodes' logs
// when the run fails.
func TestClusterFaults(t *testing.T) {
	rounds := envInt("YARD_CLUSTER_ROUNDS", 3)
	seed := uint64(envInt("YARD_CLUSTER_SEED", int(time.Now().UnixNano()%1e9)))
	kinds := defaultFaults
	if s := os.Getenv("YARD_CLUSTER_FAULTS"); s != "" {
		kinds = strings.Split(s, ",")
	}
	t.Logf("rounds %d, seed %d (YARD_CLUSTER_SEED), faults %v", rounds, seed, kinds)
	c := Start(t, 3, Options{TmpfsNode: 3})
	if dir := os.Getenv("YARD_CLUSTER_LOGS"); dir != "" {
		t.Cleanup(func() { // the nodes' full logs, when the run failed
			if !t.Failed() {
				return
			}
			for i, y := range c.Nodes {
				p := filepath.Join(dir, fmt.Sprintf("node%d.log", i+1))
				if err := os.WriteFile(p, keptLog(y.Log()), 0o644); err != nil {
					t.Logf("cannot keep node %d's log: %v", i+1, err)
				}
			}
			t.Logf("nodes' logs kept in %s", dir)
		})
	}
	if c.Tmpfs == 0 {
		kinds = without(kinds, faultFullDisk)
	}
	const topic = "faults"
	createTopic(t, c, topic, topicPartition)

	f := &faultRun{t: t, c: c, topic: topic, rec: &Recorder{}, rng: rand.New(rand.NewPCG(seed, seed)),
		unav: map[string]time.Duration{}, count: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	prods := []struct {
		name string
		idem bool
	}{{"idem1", true}, {"idem2", true}, {"plain", false}}
	for _, p := range prods {
		pr, err := NewProducer(c.Seeds(), topic, p.name, p.idem)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pr.Close()
			pr.Run(ctx, topicPartition, 20, f.rec)
		}()
	}
	stopProducers := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopProducers)

	began := time.Now()
	for len(f.rec.Silent(topicPartition, time.Time{})) > 0 {
		if time.Since(began) > livenessBound {
			t.Fatalf("partitions %v: no first acknowledgement", f.rec.Silent(topicPartition, time.Time{}))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ran := 0
	var stuck error
	for r := 1; r <= rounds && stuck == nil; r++ {
		kind := kinds[f.rng.IntN(len(kinds))]
		id := 1 + f.rng.IntN(3)
		if kind == faultFullDisk {
			id = c.Tmpfs
		}
		hold := time.Duration(1000+f.rng.IntN(2000)) * time.Millisecond
		gap, err := f.round(kind, id, hold)
		stuck = err
		ran = r
		f.count[kind]++
		f.unav[kind] = max(f.unav[kind], gap)
		t.Logf("round %d: %s of node %d for %v: longest without an ack %v (acks so far %d)", r, kind, id, hold.Round(time.Millisecond), gap.Round(time.Millisecond), len(f.rec.Acks()))
	}
	if stuck != nil {
		t.Errorf("round %d (seed %d): %v; the rounds stop here", ran, seed, stuck)
	}
	stopProducers()

	// Liveness after healing: everything readable, a new consumer group makes progress.
	rctx, rcancel := context.WithTimeout(context.Background(), livenessBound)
	defer rcancel()
	got, end, err := ReadAll(rctx, c.Seeds(), topic, topicPartition, livenessBound/3)
	if err != nil {
		t.Errorf("read back: %v", err)
	}
	rep := Check(f.rec.Acks(), got, end, func(id string) bool { return strings.HasPrefix(id, "idem") })
	linStart := time.Now()
	lin, linErr := Linearizable(f.rec.Acks(), f.rec.Failures(), got, porcupineMax, livenessBound)
	if linErr != nil {
		t.Errorf("linearizability: %v", linErr)
	}
	linTime := time.Since(linStart)
	gctx, gcancel := context.WithTimeout(context.Background(), livenessBound)
	defer gcancel()
	groupErr := GroupLive(gctx, c.Seeds(), topic, "faults-check")

	failed, why := f.rec.Failed()
	var b strings.Builder
	fmt.Fprintf(&b, "rounds %d, records acknowledged %d, failed (not acknowledged) %d, read %d, on unreadable partitions %d, lost %d (at another offset %d), duplicated %d with the idempotent producer, %d without, offset gaps %d, conflicting acks %d, offsets linearizable: %s in %v, consumer group: %v\n",
		ran, rep.Acked, failed, rep.Read, rep.Unreadable, rep.Lost, rep.Moved, rep.DupIdem, rep.DupPlain, rep.Gaps, rep.Conflicts, lin, linTime.Round(time.Millisecond), errOr(groupErr))
	names := make([]string, 0, len(f.count))
	for k := range f.count {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "  %-10s rounds %3d, longest unavailability %v\n", k, f.count[k], f.unav[k].Round(time.Millisecond))
	}
	for e, n := range why {
		fmt.Fprintf(&b, "  produce error x%d: %s\n", n, e)
	}
	for _, e := range rep.Examples {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	t.Logf("figures:\n%s", b.String())
	if !rep.OK() || groupErr != nil || err != nil || linErr != nil || !lin.OK() {
		t.Errorf("cluster faults (seed %d) broke a promise:\n%s", seed, b.String())
	}
}

// keptLog is a node's log without its debug lines (a stuck group logs a rejection per
// message: hundreds of MB), then its last 4 MB as they were.
func keptLog(log string) []byte {
	var b strings.Builder
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "level=DEBUG") {
			b.WriteString(line)
		}
	}
	b.WriteString("--- the last 4 MB, debug lines included:\n")
	b.WriteString(log[max(0, len(log)-4<<20):])
	return []byte(b.String())
}

func errOr(err error) string {
	if err == nil {
		return "live"
	}
	return err.Error()
}

func without(s []string, x string) []string {
	var r []string
	for _, v := range s {
		if v != x {
			r = append(r, v)
		}
	}
	return r
}
