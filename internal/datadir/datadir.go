// Package datadir lays out yard's data directory. Every path yard reads or writes under
// --data-dir is decided here, once; the packages that own the files (broker, catalog, stream,
// group, queue) are handed their paths by the broker, which holds the one Layout:
//
//	<data-dir>/
//	├── yard.meta                          format version and cluster ID, written once (broker)
//	├── yard.lock                          flock'ed by the one serving process; holds its pid (broker)
//	├── catalog.json                       topics, broker config defaults, producer-ID allocator (catalog)
//	├── amqp-topology.json                 durable AMQP exchanges, queues and bindings (catalog)
//	├── users.json                         users, SCRAM credentials, vhosts, AMQP permissions (auth)
//	├── kafka-acls.json                    Kafka ACLs (auth/acl)
//	├── topics/
//	│   ├── <topic>-<partition>/           one log per partition (stream over internal/log);
//	│   │                                  __consumer_offsets-<n>/ are the internal topic's (group)
//	│   └── <topic>-<partition>.<topic-id>.deleted/   a deletion in progress (tombstone)
//	├── producer-snapshots/
//	│   └── <topic>-<partition>.json       idempotent-producer state, a cache of the log (stream)
//	├── __consumer_offsets/                LEGACY: the one-partition offsets log of earlier versions,
//	│                                      converted at start-up into the topic __consumer_offsets,
//	│                                      then renamed to __consumer_offsets.deleted and removed
//	│                                      (group/legacy.go; absent in a directory made since)
//	├── offsets-journal/                   a log journaling the records for __consumer_offsets, so
//	│                                      that commits to many partitions share one fsync (group)
//	├── kafka-journal/                     a log journaling appends to topic partitions, so that
//	│                                      produces to many partitions share one fsync (stream,
//	│                                      --kafka-journal; replayed at start-up whenever present)
//	├── __transaction_state/               the transaction coordinator's log (txn)
//	├── raft/                              a cluster node's Raft state:
//	│   ├── host/                          its groups' WAL and snapshots (cluster): wal/, snap/
//	│   └── applied/<topic>-<partition>.json   how far a replicated partition's log holds its group's entries (stream)
//	└── queues/
//	    └── <vhost>/                       names escaped, see EscapeName
//	        ├── <queue>/                   one durable queue's store (queue):
//	        │   ├── messages/              its messages (a log)
//	        │   ├── settled/               its settlements (a log)
//	        │   └── level-<n>/             a store per priority level above 0, laid out alike
//	        └── <queue>.deleted/           a deletion in progress (tombstone)
//
// A log directory (internal/log) holds <20-digit base offset>.log/.index/.timeindex and its
// checkpoint files; internal/log decides those names itself, inside the directory it is given.
//
// Deleting data. Nothing under the data directory is removed at start-up without evidence
// that a deletion was asked for: a deletion first renames the directory it deletes to a
// tombstone (Tombstone), durably, before it updates the metadata that described it, and
// start-up finishes only deletions so marked (RemoveTombstone). A directory that the metadata
// does not describe and that carries no tombstone is kept where it is and logged; if a new
// topic partition or queue later needs its name, it is moved aside (MoveAside), never deleted.
//
// Permissions: yard creates data files FilePerm (0600) and directories DirPerm (0700): the
// messages are the users' data, readable by the broker's account only.
package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/atomicfile"
)

// Permissions of everything yard creates under the data directory.
const (
	FilePerm fs.FileMode = 0o600
	DirPerm  fs.FileMode = 0o700
)

// File and directory names. Only this package spells them.
const (
	metaName            = "yard.meta"
	lockName            = "yard.lock"
	catalogName         = "catalog.json"
	adoptName           = "adopt.json"
	amqpTopologyName    = "amqp-topology.json"
	usersName           = "users.json"
	kafkaACLsName       = "kafka-acls.json"
	topicsName          = "topics"
	snapshotsName       = "producer-snapshots"
	snapshotExt         = ".json"
	consumerOffsetsName = "__consumer_offsets"
	txnStateName        = "__transaction_state"
	offsetsJournalName  = "offsets-journal"
	kafkaJournalName    = "kafka-journal"
	queuesName          = "queues"
	raftName            = "raft"
	raftHostName        = "host"
	raftAppliedName     = "applied"
	queueMessagesName   = "messages"
	queueSettledName    = "settled"
	queueLevelPrefix    = "level-"

	// DeletedSuffix ends the name of a tombstone: a directory whose deletion was asked for
	// and has not finished.
	DeletedSuffix = ".deleted"
	// orphanInfix marks a directory moved aside because nothing described it and its name
	// was needed: <name>.orphan-<unix nanoseconds>.
	orphanInfix = ".orphan-"
)

// Layout is the layout of one data directory. The zero Layout is not usable.
type Layout struct{ root string }

// New returns the layout of the data directory at root.
func New(root string) Layout { return Layout{root: root} }

// Raft is a cluster node's Raft host directory (internal/cluster decides the names inside).
func (l Layout) Raft() string { return filepath.Join(l.root, raftName, raftHostName) }

// ReplicaCheckpoint is a replicated partition's checkpoint: how far its log holds its Raft
// group's entries (stream).
func (l Layout) ReplicaCheckpoint(topic string, p int32) string {
	return filepath.Join(l.root, raftName, raftAppliedName, topic+"-"+strconv.Itoa(int(p))+".json")
}

// Root is the data directory itself.
func (l Layout) Root() string { return l.root }

// Meta is yard.meta, which marks the directory as yard's.
func (l Layout) Meta() string { return filepath.Join(l.root, metaName) }

// Lock is the file flock'ed by the serving process.
func (l Layout) Lock() string { return filepath.Join(l.root, lockName) }

// Adopt records a cluster member's adoption of a single node's data while it runs
// (internal/broker adopt.go).
func (l Layout) Adopt() string { return filepath.Join(l.root, adoptName) }

// Catalog is catalog.json.
func (l Layout) Catalog() string { return filepath.Join(l.root, catalogName) }

// AMQPTopology is amqp-topology.json.
func (l Layout) AMQPTopology() string { return filepath.Join(l.root, amqpTopologyName) }

// Users is users.json: the user store (internal/auth).
func (l Layout) Users() string { return filepath.Join(l.root, usersName) }

// KafkaACLs is the file of Kafka ACLs (internal/auth/acl), written atomically.
func (l Layout) KafkaACLs() string { return filepath.Join(l.root, kafkaACLsName) }

// Topics holds one directory per partition.
func (l Layout) Topics() string { return filepath.Join(l.root, topicsName) }

// Partition is the log directory of one partition of a topic.
func (l Layout) Partition(topic string, p int32) string {
	return filepath.Join(l.Topics(), PartitionName(topic, p))
}

// PartitionName is the name of a partition's directory inside Topics: <topic>-<partition>.
// Kafka topic names may contain '-', so the partition is after the last one.
func PartitionName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// ParsePartitionName splits a name made by PartitionName.
func ParsePartitionName(name string) (topic string, p int32, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != name[i+1:] {
		return "", 0, false
	}
	return name[:i], int32(n), true
}

// ProducerSnapshots holds one producer-state snapshot per partition.
func (l Layout) ProducerSnapshots() string { return filepath.Join(l.root, snapshotsName) }

// ProducerSnapshot is the producer-state snapshot of one partition.
func (l Layout) ProducerSnapshot(topic string, p int32) string {
	return filepath.Join(l.ProducerSnapshots(), PartitionName(topic, p)+snapshotExt)
}

// ParseProducerSnapshotName splits the name of a file in ProducerSnapshots.
func ParseProducerSnapshotName(name string) (topic string, p int32, ok bool) {
	base, found := strings.CutSuffix(name, snapshotExt)
	if !found {
		return "", 0, false
	}
	return ParsePartitionName(base)
}

// ConsumerOffsets is the one-partition offsets log of earlier versions, which start-up
// converts into the internal topic __consumer_offsets (under Topics) and removes.
func (l Layout) ConsumerOffsets() string { return filepath.Join(l.root, consumerOffsetsName) }

// OffsetsJournal is the group coordinator's journal of appends to __consumer_offsets.
func (l Layout) OffsetsJournal() string { return filepath.Join(l.root, offsetsJournalName) }

// KafkaJournal is the produce journal of topic partitions (stream, --kafka-journal).
func (l Layout) KafkaJournal() string { return filepath.Join(l.root, kafkaJournalName) }

// TransactionState is the transaction coordinator's log (internal/txn).
func (l Layout) TransactionState() string { return filepath.Join(l.root, txnStateName) }

// Queues holds one directory per vhost, and in it one store per durable queue.
func (l Layout) Queues() string { return filepath.Join(l.root, queuesName) }

// Queue is the store directory of a durable queue.
func (l Layout) Queue(vhost, name string) string {
	return filepath.Join(l.Queues(), EscapeName(vhost), EscapeName(name))
}

// QueueMessages is the log of a queue store's messages.
func QueueMessages(store string) string { return filepath.Join(store, queueMessagesName) }

// QueueSettled is the log of a queue store's settlements.
func QueueSettled(store string) string { return filepath.Join(store, queueSettledName) }

// QueueLevel is the store of priority level n (1..255) inside a queue store.
func QueueLevel(store string, n int) string {
	return filepath.Join(store, queueLevelPrefix+strconv.Itoa(n))
}

// ParseQueueLevelName returns the level of a directory inside a queue store.
func ParseQueueLevelName(name string) (int, bool) {
	s, found := strings.CutPrefix(name, queueLevelPrefix)
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 255 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// EscapeName turns any AMQP name into one safe path element: bytes other than ASCII letters,
// digits, '-' and '_' become %XX, and the empty name is "%". The result never contains '.',
// so no escaped name can be taken for a tombstone or a moved-aside directory.
func EscapeName(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	if sb.Len() == 0 {
		return "%"
	}
	return sb.String()
}

// IsTombstone reports whether a directory entry's name is a tombstone.
func IsTombstone(name string) bool { return strings.HasSuffix(name, DeletedSuffix) }

// IsMovedAside reports whether a directory entry's name is one MoveAside gave.
func IsMovedAside(name string) bool { return strings.Contains(name, orphanInfix) }

// Tombstone marks dir for deletion by renaming it to dir[.tag].deleted, durably (the parent
// directory is fsynced), and returns the new path. Call it before the metadata that
// describes dir changes; remove the result with RemoveTombstone afterwards. A tombstone left
// by an earlier, unfinished deletion under the same name is removed first. A missing dir is
// not an error: the tombstone path is returned and RemoveTombstone will find nothing.
func Tombstone(dir, tag string) (string, error) {
	name := dir
	if tag != "" {
		name += "." + tag
	}
	name += DeletedSuffix
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return name, nil
	}
	if err := os.RemoveAll(name); err != nil {
		return "", fmt.Errorf("cannot remove old tombstone %s: %w", name, err)
	}
	if err := os.Rename(dir, name); err != nil {
		return "", fmt.Errorf("cannot mark %s deleted: %w", dir, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return name, nil
}

// Untombstone undoes Tombstone (the deletion it marked did not happen after all).
func Untombstone(tombstone, dir string) error {
	if _, err := os.Lstat(tombstone); os.IsNotExist(err) {
		return nil
	}
	if err := os.Rename(tombstone, dir); err != nil {
		return fmt.Errorf("cannot restore %s: %w", dir, err)
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}

// RemoveTombstone deletes a tombstone and everything in it. It refuses a path that is not a
// tombstone: deleting is only ever finishing a deletion that marked its directory.
func RemoveTombstone(path string) error {
	if !IsTombstone(filepath.Base(path)) {
		return fmt.Errorf("BUG: refusing to remove %s, which is not a tombstone", path)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("cannot remove %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// MoveAside renames dir, which nothing describes, out of the way of a new directory of the
// same name, keeping its content: <dir>.orphan-<unix nanoseconds>. It returns the new path.
func MoveAside(dir string, now time.Time) (string, error) {
	name := dir + orphanInfix + strconv.FormatInt(now.UnixNano(), 10)
	if err := os.Rename(dir, name); err != nil {
		return "", fmt.Errorf("cannot move %s aside: %w", dir, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		return "", err
	}
	return name, nil
}

// MkdirAll creates dir and its missing parents with DirPerm.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, DirPerm); err != nil {
		return fmt.Errorf("cannot create %s: %w", dir, err)
	}
	return nil
}
