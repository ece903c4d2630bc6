// Package cluster is yard's multi-raft host: it runs many Raft groups (go.etcd.io/raft/v3,
// RawNode API) on one node, one per replicated object (the metadata catalog, each
// partition), over one transport and one write-ahead log.
//
// Model. A Host owns every Group of its node. Work reaches a group through its mailbox
// (messages from peers, proposals, ticks, transport reports) and marks it scheduled; the
// host's loop then runs rounds: every scheduled group is fed its mailbox and asked for its
// Ready (in parallel on a small worker pool), the round's entries and HardStates of all
// groups are written to the WAL in one write and made durable with one fsync (group commit
// across groups), and only then are messages sent, committed entries applied to each
// group's StateMachine and the RawNodes advanced (in parallel again). A group's RawNode is
// thus touched by one goroutine at a time, without a lock.
//
// Storage (wal.go, walrecord.go, snapfile.go). The WAL is one segmented sequence of
// CRC-checked records shared by all groups; recovery keeps the valid prefix of the last
// segment and refuses damage elsewhere. Each group keeps its entries since its last snapshot
// in memory (etcd raft's MemoryStorage) as well; a snapshot is taken every SnapshotEntries
// applied entries, written atomically to its own file, and lets the WAL drop the segments
// whose entries every group has snapshotted. A follower too far behind gets the snapshot.
// A ReferenceStateMachine's snapshot only names state each member keeps itself (a partition's
// log end); a member that lacks it fetches it first (rangefetch.go: a RangeStateMachine's
// requests and bounded responses, one in flight per group, over the same connections), then
// restores the snapshot.
//
// Transport (transport.go, frame.go). One outbound TCP connection per peer carries every
// group's messages, packed into length-prefixed, versioned, CRC-checked frames; heartbeats
// of all groups to a peer travel as 25-byte rows of one frame (coalesced heartbeats). Send
// queues are bounded and drop when full (Raft retransmits), reporting the loss to Raft. A
// lost connection is redialled with exponential backoff.
//
// Joining (join.go, rejoin.go). A host that starts without Raft state asks its peers whether
// the cluster exists before any of its groups votes or campaigns: a majority of empty members
// forms a new cluster; a member that finds the cluster formed lost its data, and each of its
// groups votes only once it caught up with its leader.
//
// Quiescence. A leader whose group is idle (everything committed, applied and on every
// voter) stops ticking it and tells the followers, who stop too: an idle group costs no
// ticks, heartbeats or rounds. A proposal or any message wakes it. Followers cannot notice a
// dead leader of a quiesced group by themselves, so the host follows each peer's liveness
// (any frame, at least a ping per tick interval) and wakes the groups a silent peer leads.
package cluster
