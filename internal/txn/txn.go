// Package txn is yard's Kafka transaction coordinator (KIP-98 exactly-once): it gives
// transactional producers their producer ID and epoch (InitProducerId with a
// transactional.id), fences zombies by bumping the epoch, tracks which partitions and
// consumer groups each transaction touches (AddPartitionsToTxn, AddOffsetsToTxn), holds the
// offsets a transaction commits (TxnOffsetCommit) until it ends, and ends it (EndTxn, or a
// timeout): commit or abort markers are written to every partition of the transaction
// (stream.Partition.WriteMarker), then the held offsets are committed (commit) or dropped
// (abort).
//
// State: one meta per transactional ID, each with its own lock, so transactions of different
// IDs proceed independently; a coordinator-wide lock guards only the maps and orders writes
// to the state log (statelog.go), in which every change is durable before it is answered.
// On open the log is replayed: transactions found preparing a commit or an abort are
// completed (their markers written again: a marker written twice is harmless, the second one
// ends nothing), ongoing ones continue until their timeout aborts them.
//
// Transaction version 2 (KIP-890 part 2, the transaction.version feature at level 2, which
// Kafka 4 clients use when a broker finalizes it): a transactional Produce v12+ adds its
// partition to the transaction itself (no AddPartitionsToTxn), a TxnOffsetCommit v5+ its group
// (no AddOffsetsToTxn), and EndTxn v5+ bumps the producer epoch on every transaction end: the
// markers carry the new epoch, which fences whatever the producer still had in flight at the
// old one, and the response gives the producer its new ID and epoch. A retried EndTxn (the
// epoch before the bump, the outcome already recorded) gets the same answer again. Older
// request versions keep version 1's rules, so older clients work alongside.
//
// It is one transaction coordinator for one node: every transactional ID is coordinated here
// (FindCoordinator key type 1 answers this node), and the coordinator epoch in markers is the
// node's leader epoch.
package txn

import (
	"errors"
	"sort"
	"sync"
)

// Errors the Kafka front end maps to protocol codes.
var (
	ErrInvalidTimeout           = errors.New("invalid transaction timeout")
	ErrConcurrentTransactions   = errors.New("concurrent transactions: the previous transaction is being completed")
	ErrProducerFenced           = errors.New("producer fenced: a newer producer with the same transactional ID exists")
	ErrInvalidProducerEpoch     = errors.New("invalid producer epoch")
	ErrInvalidProducerIDMapping = errors.New("the producer ID does not belong to the transactional ID")
	ErrInvalidTxnState          = errors.New("invalid transaction state")
	ErrUnknownTopicOrPartition  = errors.New("unknown topic or partition")
	ErrNotAttempted             = errors.New("operation not attempted")
	ErrTransactionalIDNotFound  = errors.New("transactional ID not found")
	ErrInvalidTransactionalID   = errors.New("invalid transactional ID")
	ErrCoordinatorUnavailable   = errors.New("transaction coordinator not available")
)

// State is a transaction's state, as Kafka names them (DescribeTransactions, ListTransactions).
type State int8

// States.
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
	PrepareEpochFence
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState is the State named name (as String spells it).
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is an offset a transaction commits for a group.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// meta is one transactional ID's state. mu guards every field but id.
type meta struct {
	id string

	mu        sync.Mutex
	pid       int64
	epoch     int16
	lastPID   int64 // before the last epoch bump (KIP-360 retries, KIP-890 EndTxn retries)
	lastEpoch int16
	// markerPID/markerEpoch are the producer ID and epoch of the markers of a transaction
	// being completed when they are not pid/epoch: after an epoch bump that had to allocate
	// a new producer ID, the markers still name the producer ID that wrote the records
	// (with the epoch past its last), as Kafka writes them. -1: pid/epoch.
	markerPID         int64
	markerEpoch       int16
	timeoutMs         int32
	state             State
	startMs, updateMs int64
	partitions        map[TopicPartition]struct{}
	groups            map[string]struct{}
	offsets           map[string]map[TopicPartition]Offset
	removed           bool // dropped from the coordinator's map; look it up again
}

func newMeta(id string) *meta {
	return &meta{id: id, pid: -1, epoch: -1, lastPID: -1, lastEpoch: -1, markerPID: -1, markerEpoch: -1, partitions: map[TopicPartition]struct{}{},
		groups: map[string]struct{}{}, offsets: map[string]map[TopicPartition]Offset{}}
}

func (m *meta) addOffset(group string, tp TopicPartition, o Offset) {
	g := m.offsets[group]
	if g == nil {
		g = map[TopicPartition]Offset{}
		m.offsets[group] = g
	}
	g[tp] = o
}

func (m *meta) sortedPartitions() []TopicPartition {
	out := make([]TopicPartition, 0, len(m.partitions))
	for tp := range m.partitions {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// clear forgets the finished transaction's contents.
func (m *meta) clear() {
	m.partitions = map[TopicPartition]struct{}{}
	m.groups = map[string]struct{}{}
	m.offsets = map[string]map[TopicPartition]Offset{}
}
