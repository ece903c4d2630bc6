package group

// Transactional offset commits (TxnOffsetCommit): the transaction coordinator (internal/txn)
// holds a transaction's offsets until it ends; the member is checked here when they are sent,
// and they are committed here when the transaction commits.

import (
	"context"
)

// ValidateTxnCommit checks a TxnOffsetCommit's member against its group, as Commit does
// (KIP-447: a zombie of an earlier generation is refused). A commit that names no member
// (generation -1, before v3) is accepted whatever the group's state: the transaction fences
// zombies by producer epoch then.
func (c *Coordinator) ValidateTxnCommit(ctx context.Context, req CommitRequest) error {
	if req.Group == "" {
		return ErrInvalidGroupID
	}
	if err := c.Coordinates(req.Group); err != nil {
		return err // a cluster node's (placement.go)
	}
	if req.Generation < 0 && req.MemberID == "" && req.InstanceID == "" {
		return nil
	}
	g, err := c.lookup(req.Group, false)
	if err != nil {
		return err
	}
	if g == nil {
		return ErrIllegalGeneration
	}
	verr, err := call(ctx, g, func() error { return g.validateCommit(req) })
	if err != nil {
		return err
	}
	return verr
}

// WriteTxnOffsets writes offsets a transaction commits for group (TxnOffsetCommit) to the
// group's partition of __consumer_offsets as a transactional batch of the producer, as Kafka
// does; they are not committed until the transaction's marker (CompleteTxnOffsets).
func (c *Coordinator) WriteTxnOffsets(ctx context.Context, group string, pid int64, epoch int16, offs map[TopicPartition]OffsetValue) error {
	nowMs := c.now().UnixMilli()
	for tp, v := range offs {
		v.CommitMs = nowMs
		offs[tp] = v
	}
	return c.offsets.writeTxnOffsets(ctx, group, pid, epoch, offs)
}

// CompleteTxnOffsets ends producer pid's transaction for group: it writes the commit or abort
// marker to the group's partition of __consumer_offsets and, on commit, makes offs (the
// transaction's offsets for the group, as the transaction coordinator holds them) the
// group's committed offsets, without member checks (they were made when the offsets were
// sent). Completing again (after a crash, the transaction coordinator retries) is harmless.
func (c *Coordinator) CompleteTxnOffsets(ctx context.Context, group string, pid int64, epoch int16, coordinatorEpoch int32, commit bool, offs map[TopicPartition]OffsetValue) error {
	nowMs := c.now().UnixMilli()
	for tp, v := range offs {
		v.CommitMs = nowMs
		offs[tp] = v
	}
	return c.offsets.completeTxn(ctx, group, pid, epoch, coordinatorEpoch, commit, offs)
}

// CommitTxnOffsets makes the offsets of a committed transaction the group's committed
// offsets as plain (non-transactional) records, without member checks. The transaction
// coordinator uses CompleteTxnOffsets instead; this serves callers without a producer.
func (c *Coordinator) CommitTxnOffsets(ctx context.Context, group string, offs map[TopicPartition]OffsetValue) error {
	nowMs := c.now().UnixMilli()
	for tp, v := range offs {
		v.CommitMs = nowMs
		offs[tp] = v
	}
	return c.offsets.commit(ctx, group, offs)
}
