package cluster

// Adopted groups: a single node's data joined to a new cluster (internal/broker adopt.go).
// The adopting member already holds the state of a group that is new to the cluster (a
// partition's log), and the other members hold nothing. Bootstrapped as usual (index 1, every
// voter, no state), the members without the log could elect one of them and write at offsets
// the adopting member already holds. So the group starts differently on each side:
//
//   - the adopting member bootstraps with its state machine's snapshot as the group's first
//     state (index 1, term 1, every voter): its log is the more up-to-date one, and Raft
//     sends that snapshot to every other member, which fetches the state it refers to
//     (rangefetch.go) before it restores it;
//   - the other members join: no configuration and no entry (index 0), so they cannot
//     campaign (etcd raft only lets a member of its own configuration campaign) and only the
//     adopting member can be elected; they vote for it and take its configuration from the
//     snapshot it sends.
//
// After the snapshot, the group is an ordinary one. Both sides are deterministic from what
// the caller records (the adoption, in the replicated catalog), so a restart before the
// group's first snapshot file bootstraps the same way again.

// Bootstrap says how a new group starts (Host.CreateGroupFrom); the zero value is the
// default: index 1, term 1, every voter, no state.
type Bootstrap struct {
	// Data is the state machine's snapshot at index 1 (the adopting member): its state
	// already holds what Data refers to.
	Data []byte
	// Join starts the group empty, without configuration (a member that does not hold the
	// adopted state): it waits for the adopting member's snapshot.
	Join bool
}
