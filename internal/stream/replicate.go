package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/yardmq/yard/internal/catalog"
)

// CatalogReplicator carries catalog changes to every node of a cluster: the metadata Raft
// group (internal/cluster, assembled by internal/broker). Replicate returns once this node has
// applied cmd (through ApplyCatalogCommand), with the result of applying it.
type CatalogReplicator interface {
	Replicate(ctx context.Context, cmd []byte) error
}

// ErrNotReplicated refuses, on a cluster node, a change the cluster does not replicate yet:
// applied on one node only, it would make the nodes' catalogs differ.
var ErrNotReplicated = errors.New("not supported in a cluster yet (it is not replicated)")

// replicateTimeoutMs bounds the wait for a catalog change to commit (no leader, no quorum).
const replicateTimeoutMs = 15_000

// Catalog commands, JSON, one per Raft entry of the metadata group:
//
//	{"op": "create_topic", "topic": <catalog.Topic, with its id and creation time>}
//	{"op": "delete_topic", "name": "...", "id": "<topic id>"}
//	{"op": "create_partitions", "name": "...", "id": "<topic id>", "from": <count>, "partitions": <new total>}
//	{"op": "set_topic_configs", "name": "...", "id": "<topic id>", "configs": {...}}
//	{"op": "set_broker_configs", "configs": {...}}
//	{"op": "register_broker", "node": <id>, "broker": {"host": "...", "port": <port>}}
//	{"op": "reserve_producer_ids", "from": <the catalog's next producer id the proposer saw>}
//	{"op": "adopt_topics", "node": <id>, "topics": [<catalog.Topic, adopted>...], "from": <next producer id>, "configs": {<broker configs>}}
//
// The proposer validates and decides everything (the topic ID, the normalised configs); every
// node applies the same bytes in the same order. Applying a command again (a node replays
// its log after a restart) leaves the catalog as it was.
const (
	opCreateTopic      = "create_topic"
	opDeleteTopic      = "delete_topic"
	opCreatePartitions = "create_partitions"
	opSetTopicConfigs  = "set_topic_configs"
	opSetBrokerConfigs = "set_broker_configs"
	opRegisterBroker   = "register_broker"
	opReserveProducers = "reserve_producer_ids"
)

type catalogCmd struct {
	Op      string            `json:"op"`
	Topic   *catalog.Topic    `json:"topic,omitempty"`
	Name    string            `json:"name,omitempty"`
	ID      catalog.UUID      `json:"id,omitzero"`
	Configs map[string]string `json:"configs,omitempty"`
	Node    int32             `json:"node,omitempty"`
	Broker  *catalog.Broker   `json:"broker,omitempty"`
	From    int64             `json:"from,omitempty"`
	// Partitions is create_partitions' new partition count.
	Partitions int32 `json:"partitions,omitempty"`
	// Replicas are create_partitions' new partitions' replicas (placement.go), absent for a
	// topic held by every node.
	Replicas [][]int32 `json:"replicas,omitempty"`
	// Leadership is partition_leader's row (leadership.go).
	Leadership *leadershipRow `json:"leadership,omitempty"`
	// Topics are adopt_topics' topics (adopt.go).
	Topics []catalog.Topic `json:"topics,omitempty"`
}

// SetCatalogReplicator makes every later catalog change go through r (set once, before
// serving, on a cluster node).
func (m *Manager) SetCatalogReplicator(r CatalogReplicator) {
	m.repl.Store(&r)
	m.wg.Add(1)
	go m.publishLeadershipLoop(r)
}

// SetClusterSize records how many nodes replicate each partition (set once, before serving).
func (m *Manager) SetClusterSize(n int) { m.clusterSize.Store(int32(n)) }

// ReplicaHooks tie a cluster node's partitions to their Raft groups (internal/broker).
type ReplicaHooks struct {
	// Attach is called with every partition created (a new topic's, or one added to a
	// topic) before clients see it.
	Attach func(*Partition) error
	// Detach is called with every partition of a topic being deleted, before its log closes.
	Detach func(*Partition)
}

// SetReplicaHooks sets the hooks (once, before serving, on a cluster node).
func (m *Manager) SetReplicaHooks(h ReplicaHooks) { m.hooks.Store(&h) }

func (m *Manager) attachReplicas(parts []*Partition) {
	h := m.hooks.Load()
	if h == nil || h.Attach == nil {
		return
	}
	for _, p := range parts {
		if err := h.Attach(p); err != nil {
			m.log.Error("partition created but not attached to the cluster", "topic", p.Topic.Name, "partition", p.Index, "err", err)
		}
	}
}

func (m *Manager) detachReplicas(parts []*Partition) {
	h := m.hooks.Load()
	if h == nil || h.Detach == nil {
		return
	}
	for _, p := range parts {
		h.Detach(p)
	}
}

func (m *Manager) replicator() CatalogReplicator {
	if p := m.repl.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *Manager) replicate(r CatalogReplicator, c catalogCmd) error {
	cmd, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cannot encode catalog command: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicateTimeoutMs*time.Millisecond)
	defer cancel()
	return r.Replicate(ctx, cmd)
}

// ApplyCatalogCommand applies one committed catalog command (the metadata group's state
// machine). Its error is the proposer's result.
func (m *Manager) ApplyCatalogCommand(cmd []byte) error {
	var c catalogCmd
	if err := json.Unmarshal(cmd, &c); err != nil {
		return fmt.Errorf("cannot decode catalog command: %w", err)
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if m.refuseForeign(c.Op) {
		return fmt.Errorf("cannot apply %s on a node awaiting adoption: %w", c.Op, ErrClusterNotNew)
	}
	switch c.Op {
	case opCreateTopic:
		if c.Topic == nil {
			return errors.New("cannot apply catalog command: create_topic without a topic")
		}
		if t, ok := m.Topic(c.Topic.Name); ok {
			if t.ID == c.Topic.ID {
				return nil // applied before this restart
			}
			return fmt.Errorf("%w: %q", ErrTopicExists, c.Topic.Name)
		}
		_, err := m.createTopicLocked(*c.Topic)
		return err
	case opDeleteTopic:
		t, ok := m.Topic(c.Name)
		if !ok || t.ID != c.ID {
			return nil // deleted before this restart (or never here: nothing to do)
		}
		m.forgetLeadership(t.ID)
		return m.deleteTopicLocked(t)
	case opCreatePartitions:
		t, ok := m.Topic(c.Name)
		if !ok || t.ID != c.ID {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.Name)
		}
		switch n := t.NumPartitions(); {
		case n == c.Partitions:
			return nil // applied before this restart
		case int64(n) != c.From: // another change came first
			return fmt.Errorf("%w: topic %q has %d partitions, cannot change to %d", ErrInvalidPartitions, c.Name, n, c.Partitions)
		}
		return m.createPartitionsLocked(t, c.Partitions, c.Replicas)
	case opSetTopicConfigs:
		t, ok := m.Topic(c.Name)
		if !ok || t.ID != c.ID {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.Name)
		}
		return m.setTopicConfigsLocked(t, c.Configs)
	case opSetBrokerConfigs:
		return m.setBrokerConfigsLocked(c.Configs)
	case opPartitionLeader:
		if c.Leadership == nil {
			return errors.New("cannot apply catalog command: partition_leader without a leadership")
		}
		m.applyLeadership(*c.Leadership)
		return nil
	case opAdoptTopics:
		return m.applyAdoptTopics(c)
	case opRegisterBroker:
		if c.Broker == nil || c.Node < 1 {
			return errors.New("cannot apply catalog command: register_broker without a node")
		}
		return m.setBrokers(func(bs map[int32]catalog.Broker) { bs[c.Node] = *c.Broker })
	case opReserveProducers:
		// Compare and set: a reservation proposed from a stale view (another node reserved
		// in between), or replayed after a restart, changes nothing.
		return m.cat.Update(func(s *catalog.State) error {
			if s.NextProducerID != c.From {
				return errProducerIDsMoved
			}
			s.NextProducerID += producerIDBlockSize
			return nil
		})
	default:
		return fmt.Errorf("cannot apply catalog command: unknown op %q", c.Op)
	}
}

// errProducerIDsMoved refuses a producer id reservation made from a stale view of the catalog.
var errProducerIDsMoved = errors.New("the next producer id moved")

// reserveProducerIDs reserves the next block of producer ids through the metadata group, so
// that no two nodes hand out one id (a replicated partition would take one producer's
// batches for retries of the other's). It returns the block's first id.
func (m *Manager) reserveProducerIDs(r CatalogReplicator) (int64, error) {
	for attempt := 0; ; attempt++ {
		from := m.cat.Snapshot().NextProducerID
		err := m.replicate(r, catalogCmd{Op: opReserveProducers, From: from})
		if err == nil {
			return from, nil
		}
		// Replicate returned after this node applied the reservation that won: the next
		// attempt sees it.
		if !errors.Is(err, errProducerIDsMoved) || attempt == 10 {
			return -1, fmt.Errorf("cannot reserve producer ids: %w", err)
		}
	}
}

// RegisterBroker records, through the metadata group, where Kafka clients reach node.
func (m *Manager) RegisterBroker(ctx context.Context, node int32, host string, port int32) error {
	r := m.replicator()
	if r == nil {
		return errors.New("cannot register a broker: not a cluster node")
	}
	cmd, err := json.Marshal(catalogCmd{Op: opRegisterBroker, Node: node, Broker: &catalog.Broker{Host: host, Port: port}})
	if err != nil {
		return err
	}
	return r.Replicate(ctx, cmd)
}

func (m *Manager) setBrokers(change func(map[int32]catalog.Broker)) error {
	return m.cat.Update(func(s *catalog.State) error {
		if s.Brokers == nil {
			s.Brokers = map[int32]catalog.Broker{}
		}
		change(s.Brokers)
		return nil
	})
}

// catalogImage is the metadata group's snapshot: the replicated part of the catalog.
type catalogImage struct {
	Topics        map[string]catalog.Topic `json:"topics"`
	BrokerConfigs map[string]string        `json:"broker_configs,omitempty"`
	Brokers       map[int32]catalog.Broker `json:"brokers,omitempty"`
	// NextProducerID is the first producer id no node has reserved (reserve_producer_ids).
	NextProducerID int64 `json:"next_producer_id,omitempty"`
	// Leaders are the published partition leaderships (leadership.go).
	Leaders []leadershipRow `json:"leaders,omitempty"`
}

// CatalogSnapshot is the replicated part of the catalog, for the metadata group's snapshots.
func (m *Manager) CatalogSnapshot() ([]byte, error) {
	m.adminMu.Lock()
	st := m.cat.Snapshot()
	m.adminMu.Unlock()
	return json.Marshal(catalogImage{Topics: st.Topics, BrokerConfigs: st.BrokerConfigs, Brokers: st.Brokers, NextProducerID: st.NextProducerID,
		Leaders: m.leadershipRows()})
}

// RestoreCatalog brings the catalog to a snapshot received from the metadata group's leader:
// missing topics are created, configs are set. A topic this node has and the snapshot lacks
// (or has under another ID) is kept and logged: deleting data is never guessed.
func (m *Manager) RestoreCatalog(data []byte) error {
	var img catalogImage
	if err := json.Unmarshal(data, &img); err != nil {
		return fmt.Errorf("cannot decode catalog snapshot: %w", err)
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if !maps.Equal(img.BrokerConfigs, m.cat.Snapshot().BrokerConfigs) {
		if err := m.setBrokerConfigsLocked(img.BrokerConfigs); err != nil {
			return err
		}
	}
	if len(img.Brokers) > 0 {
		if err := m.setBrokers(func(bs map[int32]catalog.Broker) { maps.Copy(bs, img.Brokers) }); err != nil {
			return err
		}
	}
	if img.NextProducerID > 0 && img.NextProducerID != m.cat.Snapshot().NextProducerID {
		if err := m.cat.Update(func(s *catalog.State) error { s.NextProducerID = img.NextProducerID; return nil }); err != nil {
			return err
		}
	}
	for _, r := range img.Leaders {
		m.applyLeadership(r)
	}
	for name, ct := range img.Topics {
		t, ok := m.Topic(name)
		switch {
		case !ok && m.adopting.Load():
			// A node awaiting adoption creates no topic of the cluster's (adopt.go).
			m.foreign.Store(true)
		case !ok:
			if _, err := m.createTopicLocked(ct); err != nil {
				return err
			}
		case t.ID != ct.ID:
			m.log.Error("catalog snapshot names a topic this node holds under another id; keeping this node's", "topic", name)
		default:
			if cur, _ := m.cat.Topic(name); !maps.Equal(cur.Configs, ct.Configs) {
				if err := m.setTopicConfigsLocked(t, ct.Configs); err != nil {
					return err
				}
			}
		}
	}
	for _, t := range m.Topics() {
		if _, ok := img.Topics[t.Name]; !ok && !t.Internal {
			m.log.Error("topic not in the cluster's catalog snapshot; kept on this node only", "topic", t.Name)
		}
	}
	return nil
}
