package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

// heldGroup stands for the Raft groups of a cluster node's replicated partitions, this node
// leading them all: a proposal is held until the test commits it (applied to the partition's
// log, as every member would) or fails it.
type heldGroup struct {
	mu      sync.Mutex
	props   []*heldProposal
	started chan struct{} // a token per proposal
	index   uint64        // the last Raft index applied (shared: the tests apply in one order)
}

type heldProposal struct {
	p    *stream.Partition
	cmd  []byte
	done chan heldResult
}

type heldResult struct {
	v   any
	err error
}

func (g *heldGroup) replica(p *stream.Partition) heldReplica { return heldReplica{g, p} }

// proposal waits for the i-th proposal (0-based) to reach the group.
func (g *heldGroup) proposal(t *testing.T, i int) *heldProposal {
	t.Helper()
	for {
		g.mu.Lock()
		if i < len(g.props) {
			pr := g.props[i]
			g.mu.Unlock()
			return pr
		}
		g.mu.Unlock()
		select {
		case <-g.started:
		case <-time.After(10 * time.Second): // a bound for a hung test, far below the requests' 30 s timeout
			t.Fatalf("proposal %d never reached the group: the connection does not read its next request while one waits for its commit", i)
		}
	}
}

// commit applies the proposal to its partition's log and hands the proposer the result.
func (g *heldGroup) commit(t *testing.T, pr *heldProposal) {
	t.Helper()
	g.mu.Lock()
	g.index++
	i := g.index
	g.mu.Unlock()
	res, err := pr.p.ApplyReplicated(i, 3, pr.cmd)
	if err != nil {
		t.Fatal(err)
	}
	pr.done <- heldResult{res, nil}
}

type heldReplica struct {
	g *heldGroup
	p *stream.Partition
}

func (r heldReplica) Start(cmd []byte) stream.ReplicaProposal {
	pr := &heldProposal{p: r.p, cmd: append([]byte(nil), cmd...), done: make(chan heldResult, 1)}
	r.g.mu.Lock()
	r.g.props = append(r.g.props, pr)
	r.g.mu.Unlock()
	r.g.started <- struct{}{}
	return pr
}

func (r heldReplica) Propose(ctx context.Context, cmd []byte) (any, error) {
	return r.Start(cmd).Wait(ctx)
}

func (pr *heldProposal) Wait(ctx context.Context) (any, error) {
	select {
	case r := <-pr.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (heldReplica) Leader() uint64    { return 1 }
func (heldReplica) Term() uint64      { return 3 }
func (heldReplica) Voters() []uint64  { return []uint64{1, 2, 3} }
func (heldReplica) InSync() []uint64  { return []uint64{1, 2, 3} }
func (heldReplica) Self() uint64      { return 1 }
func (heldReplica) LeaderReady() bool { return true }

// startReplicated starts a server whose topic "rep" has partitions replicated through g.
func startReplicated(t *testing.T, partitions int32) (*testServer, *heldGroup) {
	t.Helper()
	ts := startServer(t, nil)
	tp, err := ts.st.CreateTopic("rep", partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	g := &heldGroup{started: make(chan struct{}, 64)}
	for _, p := range tp.Partitions() {
		p.SetReplica(g.replica(p))
	}
	return ts, g
}

// readProduce reads the response to the produce request with correlation id corr.
func readProduce(t *testing.T, rc *rawConn, corr int32, version int16) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	b, err := rc.readFrame(corr, version >= 9)
	if err != nil {
		t.Fatalf("no answer to produce request %d: %v", corr, err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = version
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// Produce requests to replicated partitions are pipelined on a connection: the second is
// proposed while the first still waits for its commit; each is answered once committed, in
// request order even when committed in the other, and a proposal that fails (the leader
// changed) answers NOT_LEADER_OR_FOLLOWER without holding up the ones behind it. Until
// answered, the requests keep their memory reserved.
func TestProduceReplicatedPipelined(t *testing.T) {
	t.Parallel()
	ts, g := startReplicated(t, 3)
	rc := ts.raw(t)
	c1 := rc.send(produceReq(9, "rep", 0, makeBatch(-1, -1, -1, "a")))
	c2 := rc.send(produceReq(9, "rep", 1, makeBatch(-1, -1, -1, "b", "b")))
	c3 := rc.send(produceReq(9, "rep", 2, makeBatch(-1, -1, -1, "c")))
	p1, p2, p3 := g.proposal(t, 0), g.proposal(t, 1), g.proposal(t, 2)
	if p1.p.Index != 0 || p2.p.Index != 1 || p3.p.Index != 2 {
		t.Fatalf("proposals in the order %d, %d, %d; want the requests' 0, 1, 2", p1.p.Index, p2.p.Index, p3.p.Index)
	}
	if used, _ := ts.srv.reqMem.state(); used == 0 {
		t.Fatal("requests waiting for their commit hold no memory of the request budget")
	}
	g.commit(t, p3)
	g.commit(t, p2)
	p1.done <- heldResult{nil, fmt.Errorf("raft: %w", stream.ErrNotLeader)}
	if r := readProduce(t, rc, c1, 9); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("first request: %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := readProduce(t, rc, c2, 9); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("second request: %v at offset %d, want offset 0", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	if r := readProduce(t, rc, c3, 9); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("third request: %v at offset %d, want offset 0", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	tp, _ := ts.st.Topic("rep")
	if e0, e1 := tp.Partition(0).EndOffset(), tp.Partition(1).EndOffset(); e0 != 0 || e1 != 2 {
		t.Fatalf("log ends %d and %d, want 0 and 2", e0, e1)
	}
	waitFor(t, "the request budget released", func() bool { used, _ := ts.srv.reqMem.state(); return used == 0 })
}

// A pipelined produce whose batch does not commit within the request's timeout answers
// REQUEST_TIMED_OUT; the request behind it, committed meanwhile, is answered after it.
func TestProduceReplicatedTimeoutPipelined(t *testing.T) {
	t.Parallel()
	ts, g := startReplicated(t, 2)
	rc := ts.raw(t)
	req := produceReq(9, "rep", 0, makeBatch(-1, -1, -1, "a"))
	req.TimeoutMillis = 200
	c1 := rc.send(req)
	c2 := rc.send(produceReq(9, "rep", 1, makeBatch(-1, -1, -1, "b")))
	g.proposal(t, 0)
	g.commit(t, g.proposal(t, 1))
	if r := readProduce(t, rc, c1, 9); r.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("uncommitted request: %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := readProduce(t, rc, c2, 9); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("committed request: %v at offset %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
}

// An answer goes out as soon as its request committed, although the request behind it on the
// connection still waits for its commit: the client's next request in flight depends on it.
func TestProduceReplicatedAnsweredBeforeNextCommit(t *testing.T) {
	t.Parallel()
	ts, g := startReplicated(t, 2)
	rc := ts.raw(t)
	c1 := rc.send(produceReq(9, "rep", 0, makeBatch(-1, -1, -1, "a")))
	c2 := rc.send(produceReq(9, "rep", 1, makeBatch(-1, -1, -1, "b")))
	g.commit(t, g.proposal(t, 0))
	p2 := g.proposal(t, 1)
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound for a hung test, far below the requests' 30 s timeout
	if r := readProduce(t, rc, c1, 9); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first request: %v at offset %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	g.commit(t, p2)
	if r := readProduce(t, rc, c2, 9); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("second request: %v at offset %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
}
