package stream

// Adoption (internal/broker adopt.go): the topics of a single node's data directory become a
// new cluster's, with their ids, configs, partition counts and logs. The adopting node proposes
// them all in one catalog command, adopt_topics, each marked with its origin (catalog.Adoption:
// the node and every partition's log end). Applied on the adopting node it marks its own
// topics (same ids) and attaches their partitions; applied on the others it creates them
// empty. Each partition group then starts from the adopting node's log: its first state
// (index AdoptedIndex) is the reference snapshot {AdoptedIndex, end}, which the other members
// restore after fetching [0, end) by the range fetch (replica_range.go), so every replica
// holds the records at their offsets. A partition adopted empty (end 0) starts as any new
// partition group does: that first state is the default one.
//
// The command is refused (ErrClusterNotNew, the same on every node) if the cluster's catalog
// holds a topic the command does not bring: two clusters' data are never merged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/yardmq/yard/internal/catalog"
)

const opAdoptTopics = "adopt_topics"

// AdoptedIndex is the Raft index of an adopted partition group's first state.
const AdoptedIndex = 1

// ErrClusterNotNew refuses an adoption into a cluster that already has topics.
var ErrClusterNotNew = errors.New("the cluster already has topics of its own; a single node's data is adopted by a new cluster only")

// Adoption says whether p's topic was adopted, from which node, and p's log end then.
func (p *Partition) Adoption() (node int32, end int64, ok bool) {
	a := p.Topic.adopted.Load()
	if a == nil || int(p.Index) >= len(a.Ends) {
		return 0, 0, false
	}
	return a.Node, a.Ends[p.Index], true
}

// HoldsAdopted says whether p's partition group starts from this node's log: its topic was
// adopted from this node, and the log holds the adopted range (a node whose data directory
// was emptied since fetches it like the others).
func (p *Partition) HoldsAdopted() bool {
	node, end, ok := p.Adoption()
	return ok && node == p.Topic.m.cfg.NodeID && p.log.EndOffset() >= end
}

// Adopted says whether t was adopted from a single node's data directory.
func (t *Topic) Adopted() bool { return t.adopted.Load() != nil }

// AdoptedSnapshot is an adopted partition group's first state (a reference snapshot).
func AdoptedSnapshot(end int64) []byte {
	return fmt.Appendf(nil, `{"index":%d,"end":%d}`, AdoptedIndex, end)
}

// AdoptTopics proposes every topic of this node's catalog (a single node's, not attached to
// the cluster yet) to the cluster as adopted from node: each partition's log is fsynced and
// its end recorded. Regular topics get min(3, nodes) replicas, node among them; internal
// topics stay on every node, as the cluster's own. Proposing it again after it committed
// changes nothing.
func (m *Manager) AdoptTopics(ctx context.Context, node int32, names []string) error {
	r := m.replicator()
	if r == nil {
		return errors.New("cannot adopt topics: not a cluster node")
	}
	st := m.cat.Snapshot()
	nodes := m.clusterNodes()
	var topics []catalog.Topic
	for _, name := range names {
		ct, ok := st.Topics[name]
		if !ok {
			return fmt.Errorf("cannot adopt topic %q: %w", name, ErrUnknownTopic)
		}
		t, ok := m.Topic(name)
		if !ok || t.ID != ct.ID {
			return fmt.Errorf("cannot adopt topic %q: %w", name, ErrUnknownTopic)
		}
		if ct.Adopted == nil {
			a := &catalog.Adoption{Node: node}
			for _, p := range t.Partitions() {
				if err := p.Sync(); err != nil {
					return fmt.Errorf("cannot adopt topic %q: %w", name, err)
				}
				a.Ends = append(a.Ends, p.EndOffset())
			}
			if int32(len(a.Ends)) != ct.Partitions {
				return fmt.Errorf("cannot adopt topic %q: %d of its %d partitions are open", name, len(a.Ends), ct.Partitions)
			}
			ct.Adopted = a
			if !ct.Internal {
				ct.Replicas = adoptedReplicas(nodes, node, ct.Partitions)
			}
		}
		topics = append(topics, ct)
	}
	return m.replicateCtx(ctx, r, catalogCmd{Op: opAdoptTopics, Node: node, Topics: topics, From: st.NextProducerID,
		Configs: st.BrokerConfigs})
}

// adoptedReplicas places an adopted topic's partitions: node (which holds the logs) first,
// then the next of the other nodes, rotating with the partition, up to min(3, nodes).
func adoptedReplicas(nodes []int32, node int32, n int32) [][]int32 {
	others := slices.DeleteFunc(slices.Clone(nodes), func(id int32) bool { return id == node })
	rf := min(defaultReplicationFactor, len(others)+1)
	out := make([][]int32, n)
	for i := range int(n) {
		rs := []int32{node}
		for k := 0; k < rf-1; k++ {
			rs = append(rs, others[(i+k)%len(others)])
		}
		out[i] = rs
	}
	return out
}

func (m *Manager) replicateCtx(ctx context.Context, r CatalogReplicator, c catalogCmd) error {
	cmd, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cannot encode catalog command: %w", err)
	}
	return r.Replicate(ctx, cmd)
}

// applyAdoptTopics applies adopt_topics (adminMu held).
func (m *Manager) applyAdoptTopics(c catalogCmd) error {
	listed := map[string]catalog.UUID{}
	applied := false
	for _, ct := range c.Topics {
		if ct.Adopted == nil {
			return fmt.Errorf("cannot apply catalog command: adopt_topics with topic %q not adopted", ct.Name)
		}
		listed[ct.Name] = ct.ID
		if t, ok := m.Topic(ct.Name); ok && t.ID == ct.ID && t.Adopted() {
			applied = true // before this restart, or proposed again
		}
	}
	if !applied {
		for _, t := range m.Topics() {
			if id, ok := listed[t.Name]; !ok || id != t.ID {
				return fmt.Errorf("cannot adopt node %d's topics: %w (topic %q)", c.Node, ErrClusterNotNew, t.Name)
			}
		}
		if m.foreign.Load() {
			return fmt.Errorf("cannot adopt node %d's topics: %w (a topic change came first)", c.Node, ErrClusterNotNew)
		}
		// The node's dynamic broker configs (topic defaults) become the cluster's.
		if len(c.Configs) > 0 && !maps.Equal(c.Configs, m.cat.Snapshot().BrokerConfigs) {
			if err := m.setBrokerConfigsLocked(c.Configs); err != nil {
				return err
			}
		}
	}
	for _, ct := range c.Topics {
		t, ok := m.Topic(ct.Name)
		switch {
		case !ok:
			if _, err := m.createTopicLocked(ct); err != nil {
				return err
			}
		case t.ID != ct.ID:
			m.log.Error("an adopted topic exists here under another id; keeping this node's", "topic", ct.Name)
		case !t.Adopted():
			// The adopting node: its own topic, marked, then attached to its groups.
			if err := m.cat.Update(func(s *catalog.State) error { s.Topics[ct.Name] = ct; return nil }); err != nil {
				return fmt.Errorf("cannot adopt topic %q: %w", ct.Name, err)
			}
			rs := replicaLists(ct.Replicas)
			t.replicas.Store(&rs)
			t.adopted.Store(ct.Adopted)
			m.attachReplicas(t.Partitions())
			m.log.Info("topic adopted by the cluster", "topic", ct.Name, "partitions", ct.Partitions)
		}
	}
	m.adopting.Store(false) // from now on the catalog is the cluster's
	if c.From > m.cat.Snapshot().NextProducerID {
		// Producer ids the adopted logs hold are never handed out again.
		return m.cat.Update(func(s *catalog.State) error { s.NextProducerID = max(s.NextProducerID, c.From); return nil })
	}
	return nil
}

// SetAdopting marks, on a node whose topics await adoption, that the metadata group's topic
// changes are not applied here: any such change before the adoption means the cluster is not
// new, and the adoption is refused (on every node, as the others hold that topic).
func (m *Manager) SetAdopting(on bool) { m.adopting.Store(on) }

// refuseForeign reports whether a catalog command op is refused on a node awaiting adoption.
func (m *Manager) refuseForeign(op string) bool {
	switch op {
	case opCreateTopic, opDeleteTopic, opCreatePartitions, opSetTopicConfigs:
	default:
		return false
	}
	if !m.adopting.Load() {
		return false
	}
	m.foreign.Store(true)
	return true
}
