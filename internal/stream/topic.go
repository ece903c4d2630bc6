package stream

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/log"
)

// Topic is one topic. Its partition list and configuration are replaced atomically (copy on
// write) by administration, so readers on the hot path take no lock.
type Topic struct {
	Name string
	ID   catalog.UUID
	// Internal: made by the broker for itself (see EnsureInternalTopic); reported as
	// internal in Metadata, closed to clients' writes, deletion and new partitions.
	Internal bool
	m        *Manager

	parts    atomic.Pointer[partSet]
	replicas atomic.Pointer[replicaLists]     // placement.go
	adopted  atomic.Pointer[catalog.Adoption] // adopt.go
	cfg      atomic.Pointer[TopicConfig]
}

// partSet is a topic's partitions: all of them by index, nil where this node is not a
// replica (placement.go), and the ones it holds.
type partSet struct {
	all   []*Partition
	local []*Partition
}

func (t *Topic) storeParts(all []*Partition) {
	ps := &partSet{all: all}
	for _, p := range all {
		if p != nil {
			ps.local = append(ps.local, p)
		}
	}
	t.parts.Store(ps)
}

// Partitions returns the partitions this node holds (has a log of), by partition number:
// every partition on a single node, a partition's replicas only on a cluster node.
func (t *Topic) Partitions() []*Partition {
	if p := t.parts.Load(); p != nil {
		return p.local
	}
	return nil
}

// NumPartitions is the topic's partition count, held here or not.
func (t *Topic) NumPartitions() int32 {
	if p := t.parts.Load(); p != nil {
		return int32(len(p.all))
	}
	return 0
}

// Partition returns partition i, or nil if there is none or this node is not one of its
// replicas (then i < NumPartitions: IsRemote).
func (t *Topic) Partition(i int32) *Partition {
	p := t.parts.Load()
	if p == nil || i < 0 || int(i) >= len(p.all) {
		return nil
	}
	return p.all[i]
}

// IsRemote says whether partition i exists but this node holds no replica of it.
func (t *Topic) IsRemote(i int32) bool {
	return i >= 0 && i < t.NumPartitions() && t.Partition(i) == nil
}

// Config returns the topic's effective configuration.
func (t *Topic) Config() TopicConfig { return *t.cfg.Load() }

func (t *Topic) setConfig(topicCfg, brokerCfg map[string]string) {
	c := parseTopicConfig(effectiveTopicConfigs(topicCfg, brokerCfg))
	t.cfg.Store(&c)
}

// TopicConfigs returns the effective configs of a topic, with their sources.
func (m *Manager) TopicConfigs(name string) ([]ConfigEntry, error) {
	st := m.cat.Snapshot()
	ct, ok := st.Topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return effectiveTopicConfigs(ct.Configs, st.BrokerConfigs), nil
}

// BrokerConfigs returns the broker-wide topic defaults.
func (m *Manager) BrokerConfigs() []ConfigEntry {
	return effectiveBrokerConfigs(m.cat.Snapshot().BrokerConfigs)
}

// ConfigOp is one IncrementalAlterConfigs operation.
type ConfigOp struct {
	Name  string
	Op    ConfigOpType
	Value string
}

// ConfigOpType values match Kafka's IncrementalAlterConfigs operations.
type ConfigOpType int8

const (
	OpSet      ConfigOpType = 0
	OpDelete   ConfigOpType = 1
	OpAppend   ConfigOpType = 2
	OpSubtract ConfigOpType = 3
)

// applyOps applies incremental operations to a copy of cur, as Kafka does: APPEND and
// SUBTRACT only for LIST configs, starting from the built-in default when the config is not
// set (find looks a config's definition up; unknown names are left to validation).
func applyOps(cur map[string]string, ops []ConfigOp, find func(string) (*configDef, bool)) (map[string]string, error) {
	next := map[string]string{}
	for k, v := range cur {
		next[k] = v
	}
	for _, op := range ops {
		switch op.Op {
		case OpSet:
			next[op.Name] = op.Value
		case OpDelete:
			delete(next, op.Name)
		case OpAppend, OpSubtract:
			d, ok := find(op.Name)
			if !ok {
				return nil, fmt.Errorf("%w: unknown config name %q", ErrInvalidConfig, op.Name)
			}
			if d.Type != ConfigTypeList {
				return nil, fmt.Errorf("%w: config value append or subtract is not allowed for config key: %s", ErrInvalidConfig, op.Name)
			}
			old, ok := next[op.Name]
			if !ok {
				old = d.Default
			}
			next[op.Name] = strings.Join(listOp(listItems(old), listItems(op.Value), op.Op == OpAppend), ",")
		default:
			return nil, fmt.Errorf("%w: %s: unknown operation %d", ErrInvalidConfig, op.Name, op.Op)
		}
	}
	return next, nil
}

// listOp appends the items of b not in a, or removes from a the items in b.
func listOp(a, b []string, appendB bool) []string {
	in := func(list []string, x string) bool {
		for _, y := range list {
			if x == y {
				return true
			}
		}
		return false
	}
	out := []string{}
	if appendB {
		out = append(out, a...)
		for _, x := range b {
			if !in(out, x) {
				out = append(out, x)
			}
		}
		return out
	}
	for _, x := range a {
		if !in(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// AlterTopicConfigs replaces a topic's whole set of topic-level configs (Kafka's legacy
// AlterConfigs semantics: configs not given revert to their defaults).
func (m *Manager) AlterTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	return m.alterTopic(name, func(map[string]string) (map[string]string, error) { return configs, nil }, validateOnly)
}

// IncrementalAlterTopicConfigs applies operations to a topic's configs.
func (m *Manager) IncrementalAlterTopicConfigs(name string, ops []ConfigOp, validateOnly bool) error {
	return m.alterTopic(name, func(cur map[string]string) (map[string]string, error) { return applyOps(cur, ops, findDef) }, validateOnly)
}

func (m *Manager) alterTopic(name string, change func(map[string]string) (map[string]string, error), validateOnly bool) error {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	t, ok := m.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	ct, _ := m.cat.Topic(name)
	next, err := change(ct.Configs)
	if err != nil {
		return err
	}
	if next, err = normalizeTopicConfigs(next); err != nil {
		return err
	}
	if err := checkTopicConfigs(next, m.cat.Snapshot().BrokerConfigs); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if r := m.replicator(); r != nil {
		m.adminMu.Unlock() // the command is applied, here too, under adminMu
		defer m.adminMu.Lock()
		if err := m.replicate(r, catalogCmd{Op: opSetTopicConfigs, Name: name, ID: t.ID, Configs: next}); err != nil {
			return fmt.Errorf("cannot alter configs of %q: %w", name, err)
		}
		return nil
	}
	return m.setTopicConfigsLocked(t, next)
}

func (m *Manager) setTopicConfigsLocked(t *Topic, next map[string]string) error {
	name := t.Name
	err := m.cat.Update(func(s *catalog.State) error {
		ct := s.Topics[name]
		ct.Configs = next
		s.Topics[name] = ct
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot alter configs of %q: %w", name, err)
	}
	m.applyTopicConfig(t, next, m.cat.Snapshot().BrokerConfigs)
	return nil
}

// AlterBrokerConfigs replaces the dynamic broker defaults (legacy AlterConfigs semantics).
func (m *Manager) AlterBrokerConfigs(configs map[string]string, validateOnly bool) error {
	return m.alterBroker(func(map[string]string) (map[string]string, error) { return configs, nil }, validateOnly)
}

// IncrementalAlterBrokerConfigs applies operations to the dynamic broker defaults.
func (m *Manager) IncrementalAlterBrokerConfigs(ops []ConfigOp, validateOnly bool) error {
	return m.alterBroker(func(cur map[string]string) (map[string]string, error) { return applyOps(cur, ops, findBrokerDef) }, validateOnly)
}

func (m *Manager) alterBroker(change func(map[string]string) (map[string]string, error), validateOnly bool) error {
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	next, err := change(m.cat.Snapshot().BrokerConfigs)
	if err != nil {
		return err
	}
	if next, err = normalizeBrokerConfigs(next); err != nil {
		return err
	}
	for _, ct := range m.cat.Snapshot().Topics { // a new default must not make a topic's configs conflict
		if err := checkTopicConfigs(ct.Configs, next); err != nil {
			return fmt.Errorf("%w (topic %q)", err, ct.Name)
		}
	}
	if validateOnly {
		return nil
	}
	if r := m.replicator(); r != nil {
		m.adminMu.Unlock() // the command is applied, here too, under adminMu
		defer m.adminMu.Lock()
		if err := m.replicate(r, catalogCmd{Op: opSetBrokerConfigs, Configs: next}); err != nil {
			return fmt.Errorf("cannot alter broker configs: %w", err)
		}
		return nil
	}
	return m.setBrokerConfigsLocked(next)
}

func (m *Manager) setBrokerConfigsLocked(next map[string]string) error {
	if err := m.cat.Update(func(s *catalog.State) error { s.BrokerConfigs = next; return nil }); err != nil {
		return fmt.Errorf("cannot alter broker configs: %w", err)
	}
	st := m.cat.Snapshot()
	for _, t := range m.Topics() {
		m.applyTopicConfig(t, st.Topics[t.Name].Configs, st.BrokerConfigs)
	}
	return nil
}

// applyTopicConfig makes a config change take effect on the open logs.
func (m *Manager) applyTopicConfig(t *Topic, topicCfg, brokerCfg map[string]string) {
	t.setConfig(topicCfg, brokerCfg)
	opts := t.logOptions()
	for _, p := range t.Partitions() {
		p.log.SetOptions(p.replicaLogOptions(opts))
	}
}

// logOptions are the options of t's partitions' logs. An internal topic's appends are made
// durable by the broker component that owns it (the group coordinator's offsets journal and
// its explicit Syncs), so its logs never fsync on their own: under the always policy every
// append would otherwise cost its partition an fsync of its own.
func (t *Topic) logOptions() log.Options {
	o := t.Config().logOptions(t.m)
	switch {
	case t.Internal:
		o.SyncPolicy = log.SyncNever
	case t.m.journal != nil:
		o.SyncPolicy = log.SyncJournal // made durable by the produce journal (journal.go)
	}
	return o
}
