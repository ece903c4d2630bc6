package broker

// Adoption of a single node's data directory by a new cluster (README, Cluster, "Migrating a
// single node"). Node X of a new cluster is started on the directory with its --peers and
// --adopt-single-node-data; the others start on empty directories. X then:
//
//  1. writes <data-dir>/adopt.json (the topics to adopt, this node's users and ACLs files)
//     before anything of the cluster exists on disk: a restart finds it and resumes;
//  2. opens the Raft host and the metadata group without attaching its topics' partitions;
//     meanwhile no topic change of the metadata group is applied here (stream adopt.go): one
//     means the cluster is not new, and the adoption is refused;
//  3. proposes every topic in one adopt_topics command (ids, configs, partition counts, each
//     partition's log end) until it commits; applying it marks X's topics adopted and starts
//     their partition groups from X's logs (the others fetch the logs by the range fetch);
//  4. removes adopt.json.
//
// Refused (the cluster has topics of its own), X closes its Raft host, removes raft/ and
// puts back its users and ACLs files: the directory is the single node's again.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/yardmq/yard/internal/atomicfile"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// adoptRecord is adopt.json.
type adoptRecord struct {
	Node   int32    `json:"node"`
	Topics []string `json:"topics"`
	// Users and ACLs are this node's users.json and Kafka ACL file before the cluster
	// started (nil: none), put back if the adoption is refused.
	Users []byte `json:"users,omitempty"`
	ACLs  []byte `json:"acls,omitempty"`
}

func (b *Broker) adoptPath() string { return b.layout.Adopt() }

// prepareAdoption decides whether this cluster member adopts its data directory: it returns
// the adoption record (written now, or by an earlier start that did not finish), nil for a
// directory that is a cluster member's or empty, or the refusal of a single node's directory
// without --adopt-single-node-data.
func (b *Broker) prepareAdoption(streams *stream.Manager) (*adoptRecord, error) {
	data, err := os.ReadFile(b.adoptPath())
	switch {
	case err == nil:
		var rec adoptRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", b.adoptPath(), err)
		}
		if rec.Node != b.cfg.NodeID {
			return nil, fmt.Errorf("cannot resume adoption: %s was written by node %d, this is node %d", b.adoptPath(), rec.Node, b.cfg.NodeID)
		}
		b.log.Warn("resuming the adoption of this single node's data by the cluster", "topics", len(rec.Topics))
		return &rec, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("cannot read %s: %w", b.adoptPath(), err)
	}
	if err := b.refuseSingleNodeData(streams); err == nil {
		return nil, nil
	} else if !b.cfg.AdoptSingleNodeData || !errors.Is(err, errSingleNodeData) {
		return nil, err
	}
	if err := b.checkOffsetsFlushed(streams); err != nil {
		return nil, err
	}
	rec := &adoptRecord{Node: b.cfg.NodeID}
	for _, t := range streams.Topics() {
		rec.Topics = append(rec.Topics, t.Name)
	}
	slices.Sort(rec.Topics)
	if rec.Users, err = readIfExists(b.layout.Users()); err != nil {
		return nil, err
	}
	if rec.ACLs, err = readIfExists(b.layout.KafkaACLs()); err != nil {
		return nil, err
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(b.adoptPath(), out, datadir.FilePerm); err != nil {
		return nil, fmt.Errorf("cannot record the adoption: %w", err)
	}
	b.log.Warn("adopting this single node's data: its topics become the new cluster's once a quorum of peers is up", "topics", len(rec.Topics))
	return rec, nil
}

func readIfExists(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	return data, nil
}

// checkOffsetsFlushed refuses to adopt a directory whose offsets journal still holds commits
// not written to __consumer_offsets (a single node killed rather than stopped), or that has an
// earlier yard's offsets log not migrated yet: a cluster node reads neither.
func (b *Broker) checkOffsetsFlushed(streams *stream.Manager) error {
	if _, err := os.Stat(b.layout.ConsumerOffsets()); err == nil {
		return fmt.Errorf("cannot adopt data directory %s: it holds the offsets log of an earlier yard (%s); "+
			"start it once without --peers (which moves the offsets into %s) and stop it, then adopt it", b.layout.Root(), b.layout.ConsumerOffsets(), group.OffsetsTopic)
	}
	dir := b.layout.OffsetsJournal()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := log.OpenJournal(dir, log.Options{})
	if err != nil {
		return fmt.Errorf("cannot read the offsets journal: %w", err)
	}
	defer j.Close()
	offsets, _ := streams.Topic(group.OffsetsTopic)
	lost := 0
	err = j.Replay(func(id []byte, first int64, _ []byte) error {
		if len(id) != 4 || offsets == nil {
			lost++
			return nil
		}
		p := offsets.Partition(int32(binary.BigEndian.Uint32(id)))
		if p == nil || first >= p.EndOffset() {
			lost++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot read the offsets journal: %w", err)
	}
	if lost > 0 {
		return fmt.Errorf("cannot adopt data directory %s: its offsets journal holds %d consumer offset commits not yet in %s (the node was not stopped cleanly); "+
			"start it once without --peers and stop it, then adopt it", b.layout.Root(), lost, group.OffsetsTopic)
	}
	return nil
}

// adoptTopics proposes the recorded topics to the cluster until the adoption commits or is
// refused, then removes adopt.json. It waits for a quorum of peers as long as it takes.
func (b *Broker) adoptTopics(streams *stream.Manager, rec *adoptRecord) error {
	start, warned := time.Now(), time.Now()
	for {
		ctx, cancel := context.WithTimeout(b.startCtx, adoptAttemptTimeout)
		err := streams.AdoptTopics(ctx, b.cfg.NodeID, rec.Topics)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, stream.ErrClusterNotNew) || errors.Is(err, stream.ErrUnknownTopic) {
			return err
		}
		if time.Since(warned) > adoptWarnEvery {
			b.log.Warn("adoption not committed yet: waiting for a quorum of peers", "err", err, "waited", time.Since(start).Round(time.Second))
			warned = time.Now()
		}
		select {
		case <-b.startCtx.Done():
			return fmt.Errorf("interrupted while waiting for a quorum of peers (%s is kept: the next start resumes the adoption): %w", b.adoptPath(), b.startCtx.Err())
		case <-time.After(registerRetryMs * time.Millisecond):
		}
	}
	b.log.Info("the cluster adopted this node's topics", "topics", len(rec.Topics), "took", time.Since(start).Round(time.Millisecond))
	// Then its users and ACLs, as they were before the cluster started (another node may
	// have seeded its own meanwhile). Done again after a restart: the same state again.
	if rec.Users != nil {
		if err := b.users.Adopt(rec.Users); err != nil {
			return fmt.Errorf("cannot adopt this node's users: %w", err)
		}
	}
	if rec.ACLs != nil && b.authz != nil {
		if err := b.authz.Adopt(rec.ACLs); err != nil {
			return fmt.Errorf("cannot adopt this node's kafka ACLs: %w", err)
		}
	}
	if err := os.Remove(b.adoptPath()); err != nil {
		return fmt.Errorf("cannot finish the adoption: %w", err)
	}
	return atomicfile.SyncDir(b.layout.Root())
}

const (
	adoptAttemptTimeout = 5 * time.Second
	adoptWarnEvery      = 10 * time.Second
)

// undoAdoption makes the directory the single node's again after a refused adoption (the
// Raft host closed): raft/ is removed, the users and ACLs files put back, adopt.json removed.
func (b *Broker) undoAdoption(rec *adoptRecord) error {
	if err := os.RemoveAll(filepath.Dir(b.layout.Raft())); err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{b.layout.Users(), rec.Users}, {b.layout.KafkaACLs(), rec.ACLs}} {
		var err error
		if f.data == nil {
			err = os.Remove(f.path)
			if errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		} else {
			err = atomicfile.Write(f.path, f.data, datadir.FilePerm)
		}
		if err != nil {
			return err
		}
	}
	return os.Remove(b.adoptPath())
}
