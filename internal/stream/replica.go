package stream

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
)

// PartitionReplica is a partition's Raft group on a cluster node (internal/cluster, set by
// internal/broker). On a replicated partition a produced batch is proposed to the group by
// the leader and appended to the log by every member when it commits (ApplyReplicated), so
// every member's log holds the same batches at the same offsets.
type PartitionReplica interface {
	// Propose replicates cmd and returns ApplyReplicated's result on this node.
	Propose(ctx context.Context, cmd []byte) (any, error)
	// Start hands cmd to the group without waiting; the proposal's Wait returns what
	// Propose would. Commands one goroutine starts in turn enter the group's log in that
	// order (unless one fails).
	Start(cmd []byte) ReplicaProposal
	Leader() uint64 // the leader's node id, 0 if none is known
	Term() uint64   // the group's Raft term: the partition's leader epoch
	Voters() []uint64
	InSync() []uint64 // the voters caught up, as the leader sees them (ISR)
	Self() uint64     // this node's id
	// LeaderReady: this node leads and has applied everything committed before its term, so
	// its log holds every acknowledged batch (a new leader may still be applying them).
	LeaderReady() bool
}

// ReplicaProposal is a command started in a partition's group (PartitionReplica.Start).
type ReplicaProposal interface {
	// Wait returns ApplyReplicated's result on this node once the command is committed and
	// applied here, or ctx's error (the command may still commit). Called once.
	Wait(ctx context.Context) (any, error)
}

// ErrNotLeader refuses a write on a replica that is not its partition's leader.
var ErrNotLeader = errors.New("this node is not the partition's leader")

// ErrNotEnoughReplicas refuses an acks=all write while fewer replicas than the topic's
// min.insync.replicas are in sync.
var ErrNotEnoughReplicas = errors.New("fewer replicas in sync than min.insync.replicas")

// CheckInSync refuses an acks=all write (ErrNotEnoughReplicas) to a replicated partition whose
// leader sees fewer replicas in sync than the topic's min.insync.replicas. A single node's
// partition always passes: it is its only replica.
func (p *Partition) CheckInSync() error {
	r := p.replicaOf()
	if r == nil {
		return nil
	}
	if n, min := len(r.InSync()), p.Topic.Config().MinInsyncReplicas; n < min {
		return fmt.Errorf("cannot append to %s-%d: %w (%d in sync, %d required)", p.Topic.Name, p.Index, ErrNotEnoughReplicas, n, min)
	}
	return nil
}

// replicateProduceTimeoutMs bounds the wait for a produced batch to commit, unless the
// Produce request's own timeout is shorter (AppendWithin).
const replicateProduceTimeoutMs = 30_000

// AppendWithin is Append for a Produce request with a timeout: on a replicated partition the
// wait for the batch's commit (the leader cannot commit without a majority) ends after
// timeout (0 or less, or longer than 30 s: 30 s) with an error wrapping
// context.DeadlineExceeded, Kafka's REQUEST_TIMED_OUT. The batch may still commit later (it
// is in the leader's Raft log): an idempotent producer's retry is then deduplicated.
func (p *Partition) AppendWithin(batch []byte, timeout time.Duration) (AppendResult, error) {
	res, pending, err := p.AppendAsync(batch, timeout)
	if pending != nil {
		return pending.Wait(context.Background())
	}
	return res, err
}

// AppendAsync is AppendWithin for a caller that answers later, so that a connection's
// Produce requests are pipelined: on a replicated partition it proposes the batch to the
// partition's group and returns at once with a PendingAppend (the result is its Wait's);
// elsewhere it appends as Append does (pending nil; the caller waits for durability with
// WaitDurable). Batches one goroutine appends in turn enter the log in that order.
func (p *Partition) AppendAsync(batch []byte, timeout time.Duration) (res AppendResult, pending *PendingAppend, err error) {
	if r := p.replicaOf(); r != nil && !p.Topic.Internal {
		pending, err = p.startReplicated(r, batch, timeout)
		return AppendResult{}, pending, err
	}
	res, err = p.Append(batch)
	return res, nil, err
}

// PendingAppend is a produced batch proposed to its replicated partition's group whose
// commit is not known yet (AppendAsync).
type PendingAppend struct {
	p        *Partition
	prop     ReplicaProposal
	timeout  time.Duration
	deadline time.Time // when the batch was proposed, plus timeout
}

// Wait returns the append's result once the batch is committed and applied on this node,
// or an error wrapping context.DeadlineExceeded once the append's timeout has passed since it
// was proposed (the batch may still commit), or ctx's error. Called once.
func (a *PendingAppend) Wait(ctx context.Context) (AppendResult, error) {
	ctx, cancel := context.WithDeadline(ctx, a.deadline)
	defer cancel()
	p := a.p
	v, err := a.prop.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return AppendResult{}, fmt.Errorf("cannot append to %s-%d: not committed within %v (no quorum?); it may still be: %w", p.Topic.Name, p.Index, a.timeout, err)
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	res, ok := v.(AppendResult)
	if !ok {
		return AppendResult{}, fmt.Errorf("BUG: replicated append to %s-%d returned %T", p.Topic.Name, p.Index, v)
	}
	return res, nil
}

// A replicated produce command, one per Raft entry of the partition's group:
//
//	0  uint8   version (1)
//	1  int64   LogAppendTime decided by the leader (-1: the topic uses CreateTime)
//	9  ...     the record batch as the producer sent it
const (
	produceCmdVersion     = 1
	produceCmdHeaderBytes = 9
)

// SetReplica makes p a replicated partition (before it serves). Its log no longer fsyncs
// on its own (replicaLogOptions).
func (p *Partition) SetReplica(r PartitionReplica) {
	p.replica.Store(&r)
	p.log.SetOptions(p.replicaLogOptions(p.Topic.logOptions()))
}

// replicaLogOptions are the options of p's log given its topic's (o). A replicated
// partition's log never fsyncs on its own: every batch in it was committed, i.e. fsynced in
// a majority's Raft WALs (this node's included, or it could not have applied it), before it
// was appended, and a restart cuts the log back to its last checkpoint, which fsynced it
// (writeReplicaCheckpoint, before every snapshot too), and applies the entries after it
// again from the WAL. Under the always policy it would otherwise cost every member an fsync
// of the log per batch on top of the WAL's, and hold reads back until it ran.
func (p *Partition) replicaLogOptions(o log.Options) log.Options {
	if p.replicaOf() != nil {
		o.SyncPolicy = log.SyncNever
	}
	return o
}

func (p *Partition) replicaOf() PartitionReplica {
	if r := p.replica.Load(); r != nil {
		return *r
	}
	return nil
}

// appendReplicated proposes a produced batch to the partition's group and waits for its
// commit (timeout as AppendWithin's).
func (p *Partition) appendReplicated(r PartitionReplica, batch []byte, timeout time.Duration) (AppendResult, error) {
	pending, err := p.startReplicated(r, batch, timeout)
	if err != nil {
		return AppendResult{}, err
	}
	return pending.Wait(context.Background())
}

// startReplicated proposes a produced batch to the partition's group, on its leader only,
// after the checks that need no state; the rest happens in ApplyReplicated on every member.
func (p *Partition) startReplicated(r PartitionReplica, batch []byte, timeout time.Duration) (*PendingAppend, error) {
	if r.Leader() != r.Self() {
		return nil, fmt.Errorf("cannot append to %s-%d: %w (leader: node %d)", p.Topic.Name, p.Index, ErrNotLeader, r.Leader())
	}
	cfg := p.Topic.Config()
	h, err := validateProducedBatch(batch, cfg.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	if err := p.Topic.m.checkRecords(batch, &h, cfg.MaxMessageBytes); err != nil {
		return nil, err
	}
	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = p.Topic.m.cfg.Now().UnixMilli()
	}
	cmd := make([]byte, produceCmdHeaderBytes, produceCmdHeaderBytes+len(batch))
	cmd[0] = produceCmdVersion
	binary.BigEndian.PutUint64(cmd[1:], uint64(appendTime))
	cmd = append(cmd, batch...)
	if timeout <= 0 || timeout > replicateProduceTimeoutMs*time.Millisecond {
		timeout = replicateProduceTimeoutMs * time.Millisecond
	}
	return &PendingAppend{p: p, prop: r.Start(cmd), timeout: timeout, deadline: time.Now().Add(timeout)}, nil
}

// ApplyReplicated appends a committed produce command to the log (the partition group's state
// machine), stamped with the group's term as leader epoch. Every member gets the same result.
func (p *Partition) ApplyReplicated(index, term uint64, cmd []byte) (AppendResult, error) {
	internal := len(cmd) >= 1 && (cmd[0] == internalCmdVersion || cmd[0] == barrierCmdVersion ||
		cmd[0] == markerCmdVersion || cmd[0] == termInternalCmdVersion) // replica_internal.go
	if !internal && (len(cmd) < produceCmdHeaderBytes || cmd[0] != produceCmdVersion) {
		return AppendResult{}, fmt.Errorf("cannot apply to %s-%d: unknown command format", p.Topic.Name, p.Index)
	}
	p.rangeMu.Lock()
	defer p.rangeMu.Unlock()
	if pr := p.pendingRange.Load(); pr != nil {
		// A leader still had the entries this member lacked: they win over the fetch.
		if err := p.dropPendingRange(pr); err != nil {
			return AppendResult{}, err
		}
	}
	var res AppendResult
	var err error
	if internal {
		res, err = p.applyInternal(term, cmd)
	} else {
		appendTime := int64(binary.BigEndian.Uint64(cmd[1:]))
		batch := append([]byte(nil), cmd[produceCmdHeaderBytes:]...) // Stamp writes into it
		res, err = p.appendLocal(batch, int32(term), appendTime)
	}
	if log.IsNoSpace(err) {
		// Not applied (the log undid the write): the group applies the entry again once
		// space is freed. Taken as a result, it would leave this member's log without the
		// batch the others hold.
		return AppendResult{}, err
	}
	p.appliedIndex.Store(index)
	if n := p.appliedSinceCheckpoint.Add(1); n >= p.Topic.m.cfg.ReplicaCheckpointEntries {
		if cerr := p.writeReplicaCheckpoint(); cerr != nil {
			p.Topic.m.log.Warn("cannot checkpoint a replicated partition", "topic", p.Topic.Name, "partition", p.Index, "err", cerr)
		}
	}
	return res, err
}

// defaultReplicaCheckpointEntries is how many applied entries go between two checkpoints: a
// restart re-applies at most this many from the Raft log.
const defaultReplicaCheckpointEntries = 1000

// replicaCheckpoint is <data-dir>/raft/applied/<topic>-<partition>.json: the Raft index of the
// last entry whose batch is durably in the log, and the log end offset after it.
type replicaCheckpoint struct {
	Index uint64 `json:"index"`
	End   int64  `json:"end"`
}

func (p *Partition) checkpointPath() string {
	return p.Topic.m.layout.ReplicaCheckpoint(p.Topic.Name, p.Index)
}

// writeReplicaCheckpoint fsyncs the log, then records how far it holds the group's entries.
// Called with rangeMu held (or before the group runs).
func (p *Partition) writeReplicaCheckpoint() error {
	cp := replicaCheckpoint{Index: p.appliedIndex.Load(), End: p.log.EndOffset()}
	if pr := p.pendingRange.Load(); pr != nil {
		cp.End = pr.From // the fetched batches beyond it are not applied state yet
	}
	if err := p.log.Sync(); err != nil {
		return err
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	path := p.checkpointPath()
	if err := datadir.MkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, datadir.FilePerm); err != nil {
		return err
	}
	p.appliedSinceCheckpoint.Store(0)
	return nil
}

// PrepareReplica readies the log for its group's replay and returns the Raft index it holds
// up to: the log is cut back to its last checkpoint (what lies beyond was applied after it
// and will be applied again, identically, from the Raft log), or to nothing without one.
func (p *Partition) PrepareReplica() (uint64, error) {
	var cp replicaCheckpoint
	data, err := os.ReadFile(p.checkpointPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("cannot read checkpoint of %s-%d: %w", p.Topic.Name, p.Index, err)
	default:
		if err := json.Unmarshal(data, &cp); err != nil {
			return 0, fmt.Errorf("cannot read checkpoint of %s-%d: %w", p.Topic.Name, p.Index, err)
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		if _, end, _ := p.Adoption(); end > 0 && p.HoldsAdopted() {
			// Adopted from this node's log: the group's first state (adopt.go).
			_, end, _ := p.Adoption()
			cp = replicaCheckpoint{Index: AdoptedIndex, End: end}
		}
	}
	pending, err := p.preparePendingRange(cp)
	if err != nil {
		return 0, err
	}
	if pending {
		p.appliedIndex.Store(cp.Index)
		return cp.Index, nil
	}
	if p.log.StartOffset() > cp.End {
		// A range fetch restarted the log past the checkpoint, then its record went.
		if err := p.cutTo(cp.End); err != nil {
			return 0, fmt.Errorf("cannot prepare %s-%d for replay: %w", p.Topic.Name, p.Index, err)
		}
	}
	if end := p.log.EndOffset(); end < cp.End {
		p.Topic.m.log.Error("replicated partition lost data its checkpoint says was durable; replaying it all", "topic", p.Topic.Name, "partition", p.Index, "end", end, "checkpoint", cp.End)
		cp = replicaCheckpoint{}
	}
	if p.log.EndOffset() > cp.End {
		if err := p.log.TruncateTo(cp.End); err != nil {
			return 0, fmt.Errorf("cannot prepare %s-%d for replay: %w", p.Topic.Name, p.Index, err)
		}
		p.mu.Lock()
		p.producers, p.ongoing, p.aborted, p.snapshotEnd = map[int64]*producerState{}, map[int64]int64{}, nil, -1
		err := p.rebuildProducerState(0)
		p.mu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("cannot rebuild producer state of %s-%d: %w", p.Topic.Name, p.Index, err)
		}
	}
	p.appliedIndex.Store(cp.Index)
	return cp.Index, nil
}

// SnapshotReplica is the partition group's snapshot: a reference to the log this member
// holds, not its data. It checkpoints first (the log fsynced up to the last applied entry),
// so the snapshot, written after it, never names more than the log durably holds, and a
// restart resumes from the checkpoint, at or after the snapshot. Called by the group's apply
// goroutine only.
func (p *Partition) SnapshotReplica() ([]byte, error) {
	p.rangeMu.Lock()
	defer p.rangeMu.Unlock()
	if err := p.writeReplicaCheckpoint(); err != nil {
		return nil, fmt.Errorf("cannot snapshot %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	s := replicaCheckpoint{Index: p.appliedIndex.Load(), End: p.log.EndOffset()}
	if pr := p.pendingRange.Load(); pr != nil {
		s.End = pr.From
	}
	return json.Marshal(s)
}

// HoldsReplicaSnapshot says whether this member's log holds everything a partition snapshot
// (SnapshotReplica's bytes, from any member) refers to: it applied the group's entries up to
// the snapshot's index, so its log is the same up to the snapshot's end offset, or it fetched
// the range up to that end (replica_range.go).
func (p *Partition) HoldsReplicaSnapshot(data []byte) error {
	s, err := decodeReplicaSnapshot(p, data)
	if err != nil {
		return err
	}
	a, end := p.appliedIndex.Load(), p.log.EndOffset()
	if p.pendingRange.Load() != nil && end >= s.End {
		return nil
	}
	if a < s.Index || end < s.End {
		return fmt.Errorf("cannot restore snapshot of %s-%d: it refers to entries up to %d (log end %d), this member holds up to %d (log end %d)", p.Topic.Name, p.Index, s.Index, s.End, a, end)
	}
	return nil
}
