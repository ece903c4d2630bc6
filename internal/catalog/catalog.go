// Package catalog is yard's durable metadata: everything that describes the data rather than
// being the data. Today that is topics (name, topic ID, partition count, per-topic configs),
// broker-wide config defaults and the producer-ID allocator; later issues add exchanges,
// queues, bindings, users and committed offsets as new sections of the same State.
//
// Model: one in-memory State guarded by a mutex, and one file, <data-dir>/catalog.json (its path
// is given by the broker; see internal/datadir), that
// always holds a complete State. Every change goes through Update, which applies a function to
// a copy of the state, writes the copy atomically (temp file, fsync, rename, fsync dir; see
// internal/atomicfile) and only then makes it the current state. So a change either happened
// durably or not at all, and readers never see a state that is not on disk. The file is small
// and changes are rare (admin operations), so rewriting it whole is simpler than a journal;
// a section that changes often (committed offsets) should get its own log instead.
//
// On-disk format (JSON, UTF-8, one object):
//
//	{"format": 1, "crc32c": <uint32>, "state": <State object>}
//
// format is bumped on incompatible change; crc32c (Castagnoli) covers the exact bytes of the
// "state" value as written, so a file damaged behind our back is refused instead of silently
// losing topics.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/datadir"
)

// formatVersion is the "format" field this code writes and the newest it reads.
const formatVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt means catalog.json exists but cannot be trusted.
var ErrCorrupt = errors.New("catalog file is corrupt")

// State is the whole catalog. New sections are added as new fields (with omitempty), so older
// files read fine; Clone must deep-copy every section.
type State struct {
	Topics map[string]Topic `json:"topics"`
	// BrokerConfigs are dynamic broker-wide defaults (Kafka's DescribeConfigs resource type
	// BROKER), by config name, e.g. "log.retention.ms".
	BrokerConfigs map[string]string `json:"broker_configs,omitempty"`
	// GroupConfigs are per-group dynamic configs (Kafka's resource type GROUP, e.g.
	// "consumer.session.timeout.ms"), by group ID; a group need not exist to have them.
	GroupConfigs map[string]map[string]string `json:"group_configs,omitempty"`
	// NextProducerID is the first producer ID not yet handed out; allocators reserve blocks by
	// raising it durably before using the IDs below it, so IDs are never reused across crashes.
	NextProducerID int64 `json:"next_producer_id"`
	// Brokers are a cluster's members as Kafka clients reach them, by node id (registered by
	// each node through the metadata group); empty on a single node.
	Brokers map[int32]Broker `json:"brokers,omitempty"`
}

// Broker is one cluster member's advertised Kafka address.
type Broker struct {
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// Topic describes one topic. Partitions live in <data-dir>/topics/<name>-<partition>/.
type Topic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"` // only values set on the topic
	CreatedMs  int64             `json:"created_ms"`
	// Internal marks a topic the broker made for itself (__consumer_offsets): clients read
	// it but do not write, delete or repartition it.
	Internal bool `json:"internal,omitempty"`
	// Replicas are the node ids holding each partition, by partition number, the first its
	// preferred leader; absent on a single node and for a topic created before placement was
	// recorded, whose every partition is held by every cluster node.
	Replicas [][]int32 `json:"replicas,omitempty"`
	// Adopted marks a topic a single node's data directory brought into a cluster
	// (internal/broker adopt.go): its partitions' Raft groups start from that node's logs.
	Adopted *Adoption `json:"adopted,omitempty"`
}

// Adoption is the origin of an adopted topic: the node whose logs the cluster took over and
// each partition's log end offset then (every partition group's first state).
type Adoption struct {
	Node int32   `json:"node"`
	Ends []int64 `json:"ends"`
}

// Clone deep-copies s.
func (s *State) Clone() State {
	c := State{
		Topics:         make(map[string]Topic, len(s.Topics)),
		BrokerConfigs:  cloneMap(s.BrokerConfigs),
		NextProducerID: s.NextProducerID,
	}
	if s.Brokers != nil {
		c.Brokers = make(map[int32]Broker, len(s.Brokers))
		for id, b := range s.Brokers {
			c.Brokers[id] = b
		}
	}
	if s.GroupConfigs != nil {
		c.GroupConfigs = make(map[string]map[string]string, len(s.GroupConfigs))
		for g, m := range s.GroupConfigs {
			c.GroupConfigs[g] = cloneMap(m)
		}
	}
	for k, t := range s.Topics {
		t.Configs = cloneMap(t.Configs)
		if t.Replicas != nil {
			rs := make([][]int32, len(t.Replicas))
			for i, r := range t.Replicas {
				rs[i] = append([]int32(nil), r...)
			}
			t.Replicas = rs
		}
		if t.Adopted != nil {
			a := *t.Adopted
			a.Ends = append([]int64(nil), a.Ends...)
			t.Adopted = &a
		}
		c.Topics[k] = t
	}
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Catalog is the durable store. Safe for concurrent use.
type Catalog struct {
	path    string
	existed bool // the file was there when Open ran, or has been written since

	mu    sync.Mutex // guards state; held across the file write so updates apply in order
	state State
}

// Open loads the catalog file at path, or starts an empty catalog if it does not exist yet
// (Existed tells which: an absent file next to existing data is the caller's to refuse).
func Open(path string) (*Catalog, error) {
	c := &Catalog{path: path}
	data, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.state = State{Topics: map[string]Topic{}, NextProducerID: 1}
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("cannot read catalog: %w", err)
	}
	st, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("cannot load catalog %s: %w", c.path, err)
	}
	c.state = st
	c.existed = true
	return c, nil
}

// Existed reports whether the catalog was read from its file or has been written since, as
// opposed to started empty because there was none.
func (c *Catalog) Existed() bool { return c.existed }

type envelope struct {
	Format int             `json:"format"`
	CRC32C uint32          `json:"crc32c"`
	State  json.RawMessage `json:"state"`
}

// sealJSON encodes v as the state of an envelope carrying the format version and the CRC-32C
// of v's compact JSON; what names the file in errors.
func sealJSON(v any, what string) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s: %w", what, err)
	}
	out, err := json.MarshalIndent(envelope{Format: formatVersion, CRC32C: crc32.Checksum(raw, castagnoli), State: raw}, "", " ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode %s: %w", what, err)
	}
	return append(out, '\n'), nil
}

// openJSON verifies an envelope's format version and checksum and decodes its state into v.
// Every failure wraps ErrCorrupt.
func openJSON(data []byte, v any) error {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if env.Format < 1 || env.Format > formatVersion {
		return fmt.Errorf("%w: format %d not supported (this binary reads up to %d)", ErrCorrupt, env.Format, formatVersion)
	}
	// MarshalIndent re-indents the raw state, so the checksum is over its compact form.
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.State); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if got := crc32.Checksum(compact.Bytes(), castagnoli); got != env.CRC32C {
		return fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, env.CRC32C)
	}
	if err := json.Unmarshal(compact.Bytes(), v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// Encode renders s in the on-disk format.
func Encode(s *State) ([]byte, error) { return sealJSON(s, "catalog") }

// Decode parses the on-disk format, verifying format version and checksum.
func Decode(data []byte) (State, error) {
	var st State
	if err := openJSON(data, &st); err != nil {
		return State{}, err
	}
	if st.Topics == nil {
		st.Topics = map[string]Topic{}
	}
	for name, t := range st.Topics {
		if t.Name != name || t.Partitions < 1 {
			return State{}, fmt.Errorf("%w: bad topic entry %q", ErrCorrupt, name)
		}
	}
	if st.NextProducerID < 1 {
		st.NextProducerID = 1
	}
	return st, nil
}

// Snapshot returns a deep copy of the current state.
func (c *Catalog) Snapshot() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Clone()
}

// Brokers returns the registered cluster members (none on a single node), without copying
// the rest of the state: Metadata asks on every request.
func (c *Catalog) Brokers() map[int32]Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.state.Brokers) == 0 {
		return nil
	}
	out := make(map[int32]Broker, len(c.state.Brokers))
	for id, b := range c.state.Brokers {
		out[id] = b
	}
	return out
}

// Topic returns one topic's entry.
func (c *Catalog) Topic(name string) (Topic, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.state.Topics[name]
	if ok {
		t.Configs = cloneMap(t.Configs)
	}
	return t, ok
}

// Update applies fn to a copy of the state and, if fn succeeds, makes the copy durable and
// current. If fn returns an error nothing changes and that error is returned as is, so callers
// can return sentinel errors from fn and test them with errors.Is.
func (c *Catalog) Update(fn func(s *State) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.state.Clone()
	if err := fn(&next); err != nil {
		return err
	}
	data, err := Encode(&next)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.path, data, datadir.FilePerm); err != nil {
		return fmt.Errorf("cannot write catalog: %w", err)
	}
	c.state = next
	c.existed = true
	return nil
}
