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

// CommitTxnOffsets makes the offsets of a committed transaction durable, without member
// checks (they were made when the offsets were sent).
func (c *Coordinator) CommitTxnOffsets(ctx context.Context, group string, offs map[TopicPartition]OffsetValue) error {
	nowMs := c.now().UnixMilli()
	for tp, v := range offs {
		v.CommitMs = nowMs
		offs[tp] = v
	}
	return c.offsets.commit(ctx, group, offs)
}
