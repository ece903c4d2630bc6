package stream

// Replica placement on a cluster node (README, Cluster): which nodes hold each partition.
// The proposer of a topic creation (or of new partitions) decides it, as Kafka's rack-unaware
// assignment does (AdminUtils.assignReplicasToBrokersRackUnaware, StripedReplicaPlacer): the
// first replica of partition p is node (start+p) mod n, the others follow it at a shift that
// grows every n partitions, start and shift random; so leaders and replicas spread evenly. The
// decision travels in the catalog command (catalog.Topic.Replicas) and every node applies the
// same lists. Only a partition's replicas open its log and run its Raft group; the others
// have no Partition for it (Topic.Partition is nil, Topic.Replicas still answers) and learn
// its leader from the leadership its replicas' leader publishes (PublishLeadership).

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

var (
	// ErrInvalidReplicationFactor refuses a replication factor the cluster cannot give.
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")
	// ErrInvalidReplicaAssignment refuses an explicit replica assignment.
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
)

// DefaultReplicationFactor is Kafka's default.replication.factor as yard applies it on a
// cluster: min(3, nodes).
const defaultReplicationFactor = 3

// SetClusterNodes records the cluster's members (set once, before serving, on a cluster
// node): the nodes replicas are placed on.
func (m *Manager) SetClusterNodes(ids []uint64) {
	nodes := make([]int32, 0, len(ids))
	for _, id := range ids {
		nodes = append(nodes, int32(id))
	}
	slices.Sort(nodes)
	m.nodes.Store(&nodes)
	m.clusterSize.Store(int32(len(nodes)))
}

// clusterNodes are the nodes replicas may be placed on: the cluster's members, or this node.
func (m *Manager) clusterNodes() []int32 {
	if p := m.nodes.Load(); p != nil && len(*p) > 0 {
		return *p
	}
	return []int32{m.cfg.NodeID}
}

// Placement is how a topic creation asks for its replicas: a replication factor (-1: the
// default, min(3, nodes)) or an explicit list of replicas per partition (Kafka's
// ReplicaAssignment), not both.
type Placement struct {
	ReplicationFactor int16
	Assignment        [][]int32
}

// place decides the replicas of partitions [from, from+n) of a topic: pl's explicit
// assignment after checking it, or a striped assignment of its replication factor.
func (m *Manager) place(from, n int32, pl Placement) ([][]int32, error) {
	nodes := m.clusterNodes()
	if len(pl.Assignment) > 0 {
		if int32(len(pl.Assignment)) != n {
			return nil, fmt.Errorf("%w: %d partitions but %d replica lists", ErrInvalidReplicaAssignment, n, len(pl.Assignment))
		}
		out := make([][]int32, n)
		for i, rs := range pl.Assignment {
			if len(rs) == 0 {
				return nil, fmt.Errorf("%w: partition %d has no replica", ErrInvalidReplicaAssignment, from+int32(i))
			}
			if len(rs) != len(pl.Assignment[0]) {
				return nil, fmt.Errorf("%w: all partitions should have the same number of replicas", ErrInvalidReplicaAssignment)
			}
			for j, r := range rs {
				if !slices.Contains(nodes, r) {
					return nil, fmt.Errorf("%w: partition %d: broker %d is not a member of this cluster %v", ErrInvalidReplicaAssignment, from+int32(i), r, nodes)
				}
				if slices.Contains(rs[:j], r) {
					return nil, fmt.Errorf("%w: partition %d names broker %d twice", ErrInvalidReplicaAssignment, from+int32(i), r)
				}
			}
			out[i] = slices.Clone(rs)
		}
		return out, nil
	}
	rf := int(pl.ReplicationFactor)
	switch {
	case rf == -1:
		rf = min(defaultReplicationFactor, len(nodes))
	case rf < 1:
		return nil, fmt.Errorf("%w: replication factor must be larger than 0, or -1 to use the default value", ErrInvalidReplicationFactor)
	case rf > len(nodes):
		return nil, fmt.Errorf("%w: Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are registered.",
			ErrInvalidReplicationFactor, rf, rf, len(nodes))
	}
	return stripe(nodes, from, n, rf, rand.IntN(len(nodes)), rand.IntN(len(nodes))), nil
}

// stripe is Kafka's rack-unaware assignment of partitions [from, from+n) with rf replicas
// over nodes: partition p's first replica is nodes[(p+start) mod len], the j-th next one
// follows it at 1+(shift+j) mod (len-1) places, and shift grows by one every len partitions.
func stripe(nodes []int32, from, n int32, rf, start, shift int) [][]int32 {
	nb := len(nodes)
	out := make([][]int32, 0, n)
	for p := int(from); p < int(from+n); p++ {
		if p > 0 && p%nb == 0 {
			shift++
		}
		first := (p + start) % nb
		rs := []int32{nodes[first]}
		for j := 0; j < rf-1; j++ {
			rs = append(rs, nodes[(first+1+(shift+j)%(nb-1))%nb])
		}
		out = append(out, rs)
	}
	return out
}

// hosts says whether this node holds partition i of ct: every node for a topic created
// before placement was recorded (or on a single node), else its replicas.
func hosts(ct replicaLists, self int32, i int32) bool {
	if int(i) >= len(ct) || ct[i] == nil {
		return true
	}
	return slices.Contains(ct[i], self)
}

// replicaLists are a topic's replicas per partition, as the catalog records them (nil, or a
// nil entry: every node of the cluster).
type replicaLists [][]int32

// Replicas are the nodes recorded as partition i's replicas, nil if every cluster node is
// (a topic created before placement was recorded, or a single node's).
func (t *Topic) Replicas(i int32) []int32 {
	rs := t.placement()
	if i < 0 || int(i) >= len(rs) {
		return nil
	}
	return slices.Clone(rs[i])
}

func (t *Topic) placement() replicaLists {
	if p := t.replicas.Load(); p != nil {
		return *p
	}
	return nil
}

// Replicas are the nodes recorded as p's replicas (Topic.Replicas).
func (p *Partition) Replicas() []int32 { return p.Topic.Replicas(p.Index) }
