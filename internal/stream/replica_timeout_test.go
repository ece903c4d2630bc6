package stream

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// stuckReplica leads a group that cannot commit (no quorum): a proposal waits until its
// context ends; the entries stay in its log and may commit later (commitAll).
type stuckReplica struct {
	fakeReplica
	waited atomic.Int32
}

func (r *stuckReplica) Propose(ctx context.Context, cmd []byte) (any, error) {
	r.entries = append(r.entries, append([]byte(nil), cmd...))
	r.waited.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

func (r *stuckReplica) Start(cmd []byte) ReplicaProposal { return stuckProposal{r, cmd} }

type stuckProposal struct {
	r   *stuckReplica
	cmd []byte
}

func (p stuckProposal) Wait(ctx context.Context) (any, error) { return p.r.Propose(ctx, p.cmd) }

// commitAll applies every entry proposed so far, as the group would once it has a quorum.
func (r *stuckReplica) commitAll(t *testing.T) []AppendResult {
	t.Helper()
	var out []AppendResult
	for i, cmd := range r.entries {
		res, err := r.p.ApplyReplicated(uint64(i+2), r.Term(), cmd)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	r.entries = nil
	return out
}

// A produced batch that cannot commit fails once the request's timeout passed, with an error
// wrapping context.DeadlineExceeded (Kafka's REQUEST_TIMED_OUT), instead of holding the
// request for the 30 s default. If the batch commits after all, the idempotent producer's
// retry is a duplicate of it: the log holds it once.
func TestAppendWithinTimesOutWithoutQuorum(t *testing.T) {
	t.Parallel()
	m := openReplicaManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("q", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	r := &stuckReplica{fakeReplica: fakeReplica{p: p, leader: 1}}
	p.SetReplica(r)
	done := make(chan error, 1)
	go func() {
		_, err := p.AppendWithin(batch(7, 0, 0, 2, 40), 50*time.Millisecond)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("append without a quorum: %v, want a deadline error", err)
		}
	case <-time.After(20 * time.Second): // far below the 30 s default, far above the request's timeout
		t.Fatal("append without a quorum not answered within the request's timeout")
	}
	// The group regains its quorum: the timed-out entry commits, then the retry.
	p.SetReplica(&r.fakeReplica)
	r.commitAll(t)
	res, err := p.Append(batch(7, 0, 0, 2, 40))
	if err != nil || !res.Duplicate || res.BaseOffset != 0 {
		t.Fatalf("retry after the late commit: %+v %v, want a duplicate at offset 0", res, err)
	}
	if end := p.log.EndOffset(); end != 2 {
		t.Fatalf("log end %d, want 2 (the batch once)", end)
	}
}
