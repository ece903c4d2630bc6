package stream

import "slices"

// Node is this broker's identity in the cluster and what it knows of partition leadership:
// the one place that answers "which node am I", "who leads this partition" and "in which
// leader epoch". yard runs as a single node: it is node Config.NodeID and leads every
// partition in leader epoch 0, which never changes because nothing re-elects. Replication
// will replace this type with state kept by the replicated metadata.
type Node struct {
	id       int32
	replicas int16
	m        *Manager
}

// singleLeaderEpoch is the leader epoch of every partition of a single node.
const singleLeaderEpoch = 0

// Node is this broker's view of the cluster.
func (m *Manager) Node() Node {
	return Node{id: m.cfg.NodeID, replicas: int16(m.clusterSize.Load()), m: m}
}

// ClusterSize is how many nodes the cluster has: 1 on a single node.
func (n Node) ClusterSize() int16 { return max(n.replicas, 1) }

// PartitionState is what Metadata says of a partition: its leader (-1 while none is known),
// leader epoch (-1 with no leader known), replicas and in-sync replicas.
type PartitionState struct {
	Leader, Epoch int32
	Replicas, ISR []int32
}

// State is partition i of t as this node knows it: from its own replica, or for a partition
// this node does not hold from the leadership its leader published (leadership.go).
func (n Node) State(t *Topic, i int32) PartitionState {
	if p := t.Partition(i); p != nil {
		return PartitionState{Leader: n.Leader(p), Epoch: n.LeaderEpoch(p), Replicas: n.Replicas(p), ISR: n.ISR(p)}
	}
	st := PartitionState{Leader: -1, Epoch: -1, Replicas: t.Replicas(i)}
	st.ISR = st.Replicas
	if n.m != nil {
		if l, ok := n.m.RemoteLeadership(t, i); ok && slices.Contains(st.Replicas, l.Leader) {
			st.Leader, st.Epoch, st.ISR = l.Leader, l.Epoch, l.ISR
		}
	}
	return st
}

// ID is this node's broker ID.
func (n Node) ID() int32 { return n.id }

// Leader is the broker ID of the leader of p: this node, the only replica, or on a cluster
// node the leader of p's Raft group (-1 while none is known).
func (n Node) Leader(p *Partition) int32 {
	if r := replicaOrNil(p); r != nil {
		if l := r.Leader(); l != 0 {
			return int32(l)
		}
		return -1
	}
	return n.id
}

// Replicas are the broker IDs of p's replicas: this node, or its Raft group's voters.
func (n Node) Replicas(p *Partition) []int32 {
	if r := replicaOrNil(p); r != nil {
		var out []int32
		for _, v := range r.Voters() {
			out = append(out, int32(v))
		}
		return out
	}
	return []int32{n.id}
}

// ISR are the broker IDs of p's replicas in sync with its leader: this node, or the voters
// its Raft group's leader sees replicating.
func (n Node) ISR(p *Partition) []int32 {
	if r := replicaOrNil(p); r != nil {
		var out []int32
		for _, v := range r.InSync() {
			out = append(out, int32(v))
		}
		return out
	}
	return []int32{n.id}
}

// LeaderEpoch is the current leader epoch of p: what Kafka clients send back as
// CurrentLeaderEpoch, and what is stamped into every batch appended. p may be nil for a
// partition this node does not know, for the epoch a response reports beside its error. On
// a replicated partition it is its Raft group's term.
func (Node) LeaderEpoch(p *Partition) int32 {
	if r := replicaOrNil(p); r != nil {
		return int32(r.Term())
	}
	return singleLeaderEpoch
}

// IsLeader says whether this node leads p: always on a single node, and on a cluster node
// while it leads p's Raft group.
func (Node) IsLeader(p *Partition) bool {
	r := replicaOrNil(p)
	return r == nil || r.Leader() == r.Self()
}

// LeaderReady says whether this node leads p and its log holds every batch acknowledged so
// far: always on a single node; a new Raft leader is not ready until it has applied what was
// committed before its term (PartitionReplica.LeaderReady).
func (Node) LeaderReady(p *Partition) bool {
	r := replicaOrNil(p)
	return r == nil || r.LeaderReady()
}

func replicaOrNil(p *Partition) PartitionReplica {
	if p == nil {
		return nil
	}
	return p.replicaOf()
}

// LeaderEpoch is p's current leader epoch (Node.LeaderEpoch).
func (p *Partition) LeaderEpoch() int32 { return p.Topic.m.Node().LeaderEpoch(p) }

// BrokerInfo is a cluster member as Kafka clients reach it.
type BrokerInfo struct {
	ID   int32
	Host string
	Port int32
}

// Brokers are the cluster's members that registered their Kafka address, by id; none on a
// single node.
func (m *Manager) Brokers() []BrokerInfo {
	var out []BrokerInfo
	for id, b := range m.cat.Brokers() {
		out = append(out, BrokerInfo{ID: id, Host: b.Host, Port: b.Port})
	}
	slices.SortFunc(out, func(a, b BrokerInfo) int { return int(a.ID - b.ID) })
	return out
}
