package stream

// Internal topics on a cluster node: the group coordinator's __consumer_offsets partitions are
// replicated like any other (one Raft group each), but their batches are the coordinator's,
// not a producer's. Two more replicated commands carry them (replica.go has the produce
// command):
//
//	0  uint8   internalCmdVersion (2)
//	1  ...     a batch the broker built, appended as AppendInternal appends it on a single node
//
//	0  uint8   barrierCmdVersion (3): nothing is appended; the proposer learns, once it
//	           returns, that every entry committed before it is applied on this node
//
// Transactional batches and markers are not replicated yet (as for produced batches).

import (
	"context"
	"fmt"
	"time"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	internalCmdVersion = 2
	barrierCmdVersion  = 3
)

// appendInternalReplicated proposes an internal batch to the partition's group, on its
// leader only, and returns its last offset once this node applied it.
func (p *Partition) appendInternalReplicated(r PartitionReplica, batch []byte) (int64, error) {
	if r.Leader() != r.Self() {
		return -1, fmt.Errorf("cannot append to %s-%d: %w (leader: node %d)", p.Topic.Name, p.Index, ErrNotLeader, r.Leader())
	}
	h, err := rb.ParseHeader(batch)
	if err != nil {
		return -1, fmt.Errorf("BUG: internal batch for %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if h.Transactional() {
		return -1, fmt.Errorf("cannot append a transactional batch to %s-%d: %w", p.Topic.Name, p.Index, ErrNotReplicated)
	}
	cmd := make([]byte, 1, 1+len(batch))
	cmd[0] = internalCmdVersion
	cmd = append(cmd, batch...)
	ctx, cancel := context.WithTimeout(context.Background(), replicateProduceTimeoutMs*time.Millisecond)
	defer cancel()
	v, err := r.Propose(ctx, cmd)
	if err != nil {
		return -1, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	res, ok := v.(AppendResult)
	if !ok {
		return -1, fmt.Errorf("BUG: replicated internal append to %s-%d returned %T", p.Topic.Name, p.Index, v)
	}
	return res.LastOffset, nil
}

// ReplicaBarrier returns once every entry of the partition's group committed before it is
// applied on this node (the log holds them), and the group's term it was proposed in, so
// that a new leader can read a log that no earlier leader's entry will still change. On a
// partition that is not replicated it returns at once.
func (p *Partition) ReplicaBarrier(ctx context.Context) (term uint64, err error) {
	r := p.replicaOf()
	if r == nil {
		return 0, nil
	}
	term = r.Term()
	if _, err := r.Propose(ctx, []byte{barrierCmdVersion}); err != nil {
		return 0, fmt.Errorf("cannot wait for %s-%d to apply its log: %w", p.Topic.Name, p.Index, err)
	}
	return term, nil
}

// applyInternal applies an internal command (replicated append or barrier).
func (p *Partition) applyInternal(term uint64, cmd []byte) (AppendResult, error) {
	if cmd[0] == barrierCmdVersion {
		return AppendResult{BaseOffset: -1, LastOffset: -1, LogAppendTime: -1}, nil
	}
	batch := append([]byte(nil), cmd[1:]...) // Stamp writes into it
	if _, err := rb.ParseHeader(batch); err != nil {
		return AppendResult{}, fmt.Errorf("cannot apply to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rb.Stamp(batch, int32(term), -1)
	res, err := p.log.AppendCheckedNoWait(batch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: -1, LogStartOffset: p.log.StartOffset()}, nil
}
