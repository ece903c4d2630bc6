package stream

// Node is this broker's identity in the cluster and what it knows of partition leadership:
// the one place that answers "which node am I", "who leads this partition" and "in which
// leader epoch". yard runs as a single node: it is node Config.NodeID and leads every
// partition in leader epoch 0, which never changes because nothing re-elects. Replication
// will replace this type with state kept by the replicated metadata.
type Node struct{ id int32 }

// singleLeaderEpoch is the leader epoch of every partition of a single node.
const singleLeaderEpoch = 0

// Node is this broker's view of the cluster.
func (m *Manager) Node() Node { return Node{id: m.cfg.NodeID} }

// ID is this node's broker ID.
func (n Node) ID() int32 { return n.id }

// Leader is the broker ID of the leader of p: this node, the only replica.
func (n Node) Leader(*Partition) int32 { return n.id }

// Replicas are the broker IDs of p's replicas: this node.
func (n Node) Replicas(*Partition) []int32 { return []int32{n.id} }

// LeaderEpoch is the current leader epoch of p: what Kafka clients send back as
// CurrentLeaderEpoch, and what is stamped into every batch appended. p may be nil for a
// partition this node does not know, for the epoch a response reports beside its error.
func (Node) LeaderEpoch(*Partition) int32 { return singleLeaderEpoch }

// LeaderEpoch is p's current leader epoch (Node.LeaderEpoch).
func (p *Partition) LeaderEpoch() int32 { return p.Topic.m.Node().LeaderEpoch(p) }
