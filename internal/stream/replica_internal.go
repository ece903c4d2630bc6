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
//	0  uint8   termInternalCmdVersion (5)
//	1  uint64  the Raft term the proposer leads in
//	9  ...     an internal batch, appended only if the entry commits in that term: a
//	           coordinator that loaded its state in a term (after a barrier) cannot have a
//	           write of its reach the log after it lost the leadership (a deposed leader's
//	           proposal forwarded to the next one fails here, on every member alike)
//
// Transaction markers (WriteMarker) are a fourth command, any member may propose it (a
// follower's proposal is forwarded to the leader), so the transaction coordinator, wherever
// it runs, ends a transaction on every replica:
//
//	0  uint8   markerCmdVersion (4)
//	1  int64   producer ID
//	9  int16   producer epoch
//	11 int32   coordinator epoch
//	15 uint8   1 commit, 0 abort
//	16 int64   the marker's timestamp (decided by the proposer, the same on every replica)
//
// A transactional internal batch (TxnOffsetCommit's offsets in __consumer_offsets) opens its
// producer's transaction on every member, as a produced one does; the marker ends it. A
// partition's marker observer (SetMarkerObserver: the group coordinator) learns of every
// marker applied, with its offset.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	internalCmdVersion     = 2
	barrierCmdVersion      = 3
	markerCmdVersion       = 4
	termInternalCmdVersion = 5
	markerCmdBytes         = 24
)

// appendInternalReplicated proposes an internal batch to the partition's group, on its
// leader only, and returns its last offset once this node applied it. term > 0: only if it
// commits in that term (termInternalCmdVersion).
func (p *Partition) appendInternalReplicated(r PartitionReplica, batch []byte, term uint64) (int64, error) {
	if r.Leader() != r.Self() {
		return -1, fmt.Errorf("cannot append to %s-%d: %w (leader: node %d)", p.Topic.Name, p.Index, ErrNotLeader, r.Leader())
	}
	h, err := rb.ParseHeader(batch)
	if err != nil {
		return -1, fmt.Errorf("BUG: internal batch for %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if h.Control() {
		return -1, fmt.Errorf("BUG: control batch for %s-%d through AppendInternal (WriteMarker writes markers)", p.Topic.Name, p.Index)
	}
	var cmd []byte
	if term > 0 {
		cmd = make([]byte, 9, 9+len(batch))
		cmd[0] = termInternalCmdVersion
		binary.BigEndian.PutUint64(cmd[1:], term)
	} else {
		cmd = make([]byte, 1, 1+len(batch))
		cmd[0] = internalCmdVersion
	}
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

// AppendInternalInTerm is AppendInternal on a replicated partition for a writer that read
// the partition's state in term (after ReplicaBarrier): the batch is appended only if it
// commits in that term, so nothing it writes reaches the log after a later leader read it.
// On a partition that is not replicated it is AppendInternal.
func (p *Partition) AppendInternalInTerm(batch []byte, term uint64) (lastOffset int64, err error) {
	if r := p.replicaOf(); r != nil {
		if term == 0 {
			return -1, fmt.Errorf("BUG: term 0 for an append to %s-%d", p.Topic.Name, p.Index)
		}
		return p.appendInternalReplicated(r, batch, term)
	}
	return p.AppendInternal(batch)
}

// errStaleTerm: an internal append proposed in an earlier term than it committed in.
var errStaleTerm = fmt.Errorf("%w: the leadership changed before the write committed", ErrNotLeader)

// writeMarkerReplicated proposes a marker to the partition's group (from any member) and
// returns once it is committed and applied on this node.
func (p *Partition) writeMarkerReplicated(ctx context.Context, r PartitionReplica, pid int64, epoch int16, coordinatorEpoch int32, commit bool) error {
	cmd := make([]byte, markerCmdBytes)
	cmd[0] = markerCmdVersion
	binary.BigEndian.PutUint64(cmd[1:], uint64(pid))
	binary.BigEndian.PutUint16(cmd[9:], uint16(epoch))
	binary.BigEndian.PutUint32(cmd[11:], uint32(coordinatorEpoch))
	if commit {
		cmd[15] = 1
	}
	binary.BigEndian.PutUint64(cmd[16:], uint64(p.Topic.m.cfg.Now().UnixMilli()))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, replicateProduceTimeoutMs*time.Millisecond)
		defer cancel()
	}
	if _, err := r.Propose(ctx, cmd); err != nil {
		return fmt.Errorf("cannot write transaction marker to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return nil
}

// applyMarker appends a replicated marker and ends the producer's transaction here.
func (p *Partition) applyMarker(term uint64, cmd []byte) (AppendResult, error) {
	if len(cmd) != markerCmdBytes {
		return AppendResult{}, fmt.Errorf("cannot apply to %s-%d: marker command of %d bytes", p.Topic.Name, p.Index, len(cmd))
	}
	pid := int64(binary.BigEndian.Uint64(cmd[1:]))
	epoch := int16(binary.BigEndian.Uint16(cmd[9:]))
	coordinatorEpoch := int32(binary.BigEndian.Uint32(cmd[11:]))
	commit := cmd[15] == 1
	nowMs := int64(binary.BigEndian.Uint64(cmd[16:]))
	batch := appendControlBatch(nil, pid, epoch, coordinatorEpoch, commit, nowMs)
	p.mu.Lock()
	defer p.mu.Unlock()
	rb.Stamp(batch, int32(term), -1)
	res, err := p.appendLogLocked(batch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot write transaction marker to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.endTxnLocked(pid, epoch, commit, res.BaseOffset, nowMs)
	if obs := p.markerObs.Load(); obs != nil {
		(*obs)(pid, commit, res.BaseOffset)
	}
	return AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: -1, LogStartOffset: p.log.StartOffset()}, nil
}

// SetMarkerObserver has fn called for every marker a replicated partition applies, with its
// producer, outcome and offset, in log order, on the group's apply goroutine: fn must not
// block (nor wait for anything the partition's group does).
func (p *Partition) SetMarkerObserver(fn func(pid int64, commit bool, offset int64)) {
	p.markerObs.Store(&fn)
}

// applyInternal applies an internal command (replicated append, barrier or marker).
func (p *Partition) applyInternal(term uint64, cmd []byte) (AppendResult, error) {
	switch cmd[0] {
	case barrierCmdVersion:
		return AppendResult{BaseOffset: -1, LastOffset: -1, LogAppendTime: -1}, nil
	case markerCmdVersion:
		return p.applyMarker(term, cmd)
	case termInternalCmdVersion:
		if len(cmd) < 9 {
			return AppendResult{}, fmt.Errorf("cannot apply to %s-%d: short internal command", p.Topic.Name, p.Index)
		}
		if want := binary.BigEndian.Uint64(cmd[1:]); want != term {
			return AppendResult{}, fmt.Errorf("cannot append to %s-%d: proposed in term %d, committed in %d: %w", p.Topic.Name, p.Index, want, term, errStaleTerm)
		}
		cmd = cmd[8:] // the batch at cmd[1:], as for internalCmdVersion
	}
	batch := append([]byte(nil), cmd[1:]...) // Stamp writes into it
	h, err := rb.ParseHeader(batch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot apply to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rb.Stamp(batch, int32(term), -1)
	res, err := p.log.AppendCheckedNoWait(batch)
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if h.Transactional() && !h.Control() {
		p.beginTxnLocked(h.ProducerID, res.BaseOffset)
	}
	return AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: -1, LogStartOffset: p.log.StartOffset()}, nil
}
