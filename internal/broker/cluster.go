package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/auth/acl"
	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/stream"
)

// metadataGroup is the id of the Raft group that replicates the catalog.
const metadataGroup = 0

// ParsePeers parses --peers: "1=host:port,2=host:port,3=host:port", node ids from 1.
func ParsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, addr, ok := strings.Cut(part, "=")
		id, err := strconv.ParseUint(strings.TrimSpace(idStr), 10, 31)
		if !ok || err != nil || id == 0 {
			return nil, fmt.Errorf("cannot parse --peers: %q is not id=host:port with an id from 1", part)
		}
		addr = strings.TrimSpace(addr)
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("cannot parse --peers: %q: %w", part, err)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("cannot parse --peers: node %d named twice", id)
		}
		peers[id] = addr
	}
	if len(peers) == 0 {
		return nil, errors.New("cannot parse --peers: no peer")
	}
	return peers, nil
}

// clusterListenAddr is --cluster-listen, or this node's own address in --peers.
func (b *Broker) clusterListenAddr() (string, error) {
	peers, err := ParsePeers(b.cfg.Peers)
	if err != nil {
		return "", err
	}
	self, ok := peers[uint64(b.cfg.NodeID)]
	if b.cfg.NodeID < 1 || !ok {
		return "", fmt.Errorf("cannot start cluster: --node-id %d is not among --peers %s", b.cfg.NodeID, b.cfg.Peers)
	}
	if b.cfg.ClusterListen != "" {
		return b.cfg.ClusterListen, nil
	}
	return self, nil
}

// openCluster makes this node a cluster member: it opens the Raft host on the cluster
// listener (peers may connect from now on) and the metadata group, whose state machine is
// the topic manager's catalog; from then on every catalog change goes through that group.
func (b *Broker) openCluster() (*frontEnd, error) {
	peers, err := ParsePeers(b.cfg.Peers)
	if err != nil {
		return nil, err
	}
	streams, release, err := b.sharedStreams()
	if err != nil {
		return nil, err
	}
	adopt, err := b.prepareAdoption(streams)
	if err != nil {
		return nil, errors.Join(err, release())
	}
	pending := map[string]bool{} // this node's topics not adopted yet: not attached until they are
	if adopt != nil {
		for _, name := range adopt.Topics {
			if t, ok := streams.Topic(name); ok && !t.Adopted() {
				pending[name] = true
			}
		}
		streams.SetAdopting(len(pending) > 0)
	}
	hcfg := cluster.Config{
		NodeID:   uint64(b.cfg.NodeID),
		Dir:      b.layout.Raft(),
		Listener: b.clusterLn,
		Peers:    peers,
		Logger:   b.log.With("component", "cluster"),
		TLS:      b.clusterTLS,
	}
	if l := b.cfg.raftLimits; l != nil {
		hcfg.SnapshotEntries, hcfg.CatchUpEntries, hcfg.RetainEntries = l[0], l[1], l[2]
	}
	host, err := cluster.Open(hcfg)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot open the cluster's raft host: %w", err), release())
	}
	b.raft = host
	voters := slices.Sorted(maps.Keys(peers))
	attach := func(p *stream.Partition) error {
		return attachPartition(host, p, partitionVoters(p, voters))
	}
	for _, t := range streams.Topics() {
		if pending[t.Name] {
			continue
		}
		for _, p := range t.Partitions() {
			if err := attach(p); err != nil {
				return nil, errors.Join(err, host.Close(), release())
			}
		}
	}
	streams.SetReplicaHooks(stream.ReplicaHooks{
		Attach: attach,
		Detach: func(p *stream.Partition) { host.RemoveGroup(partitionGroupID(p.Topic.ID, p.Index)) },
	})
	streams.SetClusterNodes(voters)
	g, err := host.CreateGroup(metadataGroup, catalogSM{m: streams, users: b.users, acls: b.authz}, voters)
	if err != nil {
		return nil, errors.Join(err, host.Close(), release())
	}
	streams.SetCatalogReplicator(groupReplicator{g})
	b.users.SetReplicator(authReplicator{g})
	if b.authz != nil {
		b.authz.SetReplicator(authReplicator{g})
	}
	if adopt != nil {
		if err := b.adoptTopics(streams, adopt); err != nil {
			err = fmt.Errorf("cannot adopt this node's data: %w", err)
			cerr := host.Close()
			if errors.Is(err, stream.ErrClusterNotNew) && cerr == nil {
				if uerr := b.undoAdoption(adopt); uerr != nil {
					err = errors.Join(err, fmt.Errorf("cannot undo the adoption (remove %s by hand before starting it as a single node): %w", filepath.Dir(b.layout.Raft()), uerr))
				} else {
					err = fmt.Errorf("%w; the data directory is the single node's again", err)
				}
			}
			return nil, errors.Join(err, cerr, release())
		}
	}
	var qc *quorumCluster
	if b.hosts != nil { // serving AMQP: quorum queues are replicated (quorum.go)
		if qc, err = b.openQuorum(host, voters); err != nil {
			return nil, errors.Join(err, host.Close(), release())
		}
		b.quorum = qc
	}
	b.log.Info("cluster member", "node", b.cfg.NodeID, "peers", b.cfg.Peers)
	ctx, cancel := context.WithCancel(context.Background())
	registered := make(chan struct{})
	coordinating := make(chan struct{})
	closeAll := func() error {
		cancel()
		<-registered
		<-coordinating
		err := host.Close()
		if qc != nil {
			qc.close()
		}
		return errors.Join(err, release())
	}
	return &frontEnd{
		serve: func([]boundListener) func(context.Context) error {
			go func() {
				defer close(registered)
				b.registerBroker(ctx, streams)
				b.seedAuth(ctx, g)
			}()
			go func() {
				defer close(coordinating)
				done := make(chan struct{})
				go func() {
					defer close(done)
					b.coordinateTxns(ctx, streams)
				}()
				b.coordinateGroups(ctx, streams)
				<-done
			}()
			return func(context.Context) error { return closeAll() }
		},
		abort: func() error {
			close(registered)
			close(coordinating)
			return closeAll()
		},
	}, nil
}

// refuseSingleNodeData refuses to make a cluster member of a data directory that a single
// node wrote: topics but no Raft host directory. Attached as partition groups, their logs
// would be cut back to a checkpoint they never had (emptied) and their topics would exist on
// this node only, outside the replicated catalog. A cluster member's directory always has
// raft/host once it has started; an empty (new) directory has no topic.
func (b *Broker) refuseSingleNodeData(streams *stream.Manager) error {
	if _, err := os.Stat(b.layout.Raft()); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read the raft directory: %w", err)
	}
	var names []string
	var records int64
	for _, t := range streams.Topics() {
		names = append(names, t.Name)
		for _, p := range t.Partitions() {
			records += p.EndOffset() - p.StartOffset()
		}
	}
	if len(names) == 0 {
		return nil
	}
	slices.Sort(names)
	list := strings.Join(names, ", ")
	if len(names) > 5 {
		list = strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return fmt.Errorf("data directory %s was written by a single node "+
		"(%d topics: %s; %d records) and has no raft/ directory: %w; start it without --peers, "+
		"or make it node 1 of a new cluster with --adopt-single-node-data (see \"Migrating a single node\" in "+
		"the README's Cluster section)", b.layout.Root(), len(names), list, records, errSingleNodeData)
}

// errSingleNodeData is refuseSingleNodeData's refusal.
var errSingleNodeData = errors.New("a cluster member adopts it only when told to")

// registerBroker records this node's advertised Kafka address in the replicated catalog,
// retrying until the metadata group commits it (or ctx ends), so that every node's Metadata
// lists every broker.
func (b *Broker) registerBroker(ctx context.Context, streams *stream.Manager) {
	host, port, ok := b.advertisedKafka()
	if !ok {
		return
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := streams.RegisterBroker(rctx, b.cfg.NodeID, host, port)
		cancel()
		if err == nil {
			b.log.Info("broker registered in the cluster", "node", b.cfg.NodeID, "host", host, "port", port)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(registerRetryMs * time.Millisecond):
		}
	}
}

// registerRetryMs is the pause between two attempts to register this broker.
const registerRetryMs = 200

// advertisedKafka is the address this node's Metadata gives for itself to a client that
// connected to the first Kafka listener: --advertised-host/port, else the listener's bound
// address, with a wildcard host replaced by this node's host in --peers.
func (b *Broker) advertisedKafka() (string, int32, bool) {
	if b.kafkaAddr == nil {
		return "", 0, false
	}
	host, portStr, err := net.SplitHostPort(b.kafkaAddr.String())
	if err != nil {
		return "", 0, false
	}
	port, _ := strconv.Atoi(portStr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if peers, err := ParsePeers(b.cfg.Peers); err == nil {
			host, _, _ = net.SplitHostPort(peers[uint64(b.cfg.NodeID)])
		}
	}
	if b.cfg.Kafka.AdvertisedHost != "" {
		host = b.cfg.Kafka.AdvertisedHost
	}
	if b.cfg.Kafka.AdvertisedPort != 0 {
		port = int(b.cfg.Kafka.AdvertisedPort)
	}
	return host, int32(port), true
}

// partitionGroupID is the Raft group of a partition: derived from its topic's id (random,
// replicated) and its index, so every node computes the same one. Never metadataGroup.
func partitionGroupID(topicID [16]byte, index int32) uint64 {
	h := fnv.New64a()
	h.Write(topicID[:])
	h.Write([]byte{byte(index >> 24), byte(index >> 16), byte(index >> 8), byte(index)})
	if id := h.Sum64(); id != metadataGroup {
		return id
	}
	return metadataGroup + 1
}

// partitionVoters are p's Raft group's voters: its recorded replicas, or every node for a
// topic created before placement was recorded.
func partitionVoters(p *stream.Partition, all []uint64) []uint64 {
	rs := p.Replicas()
	if rs == nil {
		return all
	}
	out := make([]uint64, 0, len(rs))
	for _, r := range rs {
		out = append(out, uint64(r))
	}
	slices.Sort(out)
	return out
}

// attachPartition makes p a replicated partition: its log is cut back to its checkpoint and
// its Raft group (all voters) replays what follows.
func attachPartition(host *cluster.Host, p *stream.Partition, voters []uint64) error {
	applied, err := p.PrepareReplica()
	if err != nil {
		return err
	}
	var boot cluster.Bootstrap // adopt.go: an adopted partition starts from its node's log
	if _, end, ok := p.Adoption(); ok && end > 0 {
		// (An empty log's first state is the default one: every member starts as usual.)
		if p.HoldsAdopted() {
			boot.Data = stream.AdoptedSnapshot(end)
		} else {
			boot.Join = true
		}
	}
	g, err := host.CreateGroupFrom(partitionGroupID(p.Topic.ID, p.Index), &partitionSM{p: p, applied: applied}, voters, boot)
	if err != nil {
		return fmt.Errorf("cannot replicate %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.SetReplica(partitionReplica{g: g, self: host.ID()})
	return nil
}

// partitionSM is a replicated partition's state machine: its log.
type partitionSM struct {
	p       *stream.Partition
	applied uint64
}

func (s *partitionSM) Apply(e cluster.Entry) (any, error) {
	return s.p.ApplyReplicated(e.Index, e.Term, e.Data)
}
func (s *partitionSM) AppliedIndex() uint64 { return s.applied }

// Snapshot is by reference: {applied index, log end offset}; the batches are in the log.
func (s *partitionSM) Snapshot() ([]byte, error) { return s.p.SnapshotReplica() }

// Restore accepts a snapshot only if this member's log holds what it refers to: its own
// snapshot after a restart, or another member's once the missing range was fetched (a
// cluster.RangeStateMachine: RangeRequest, ReadRange, WriteRange).
func (s *partitionSM) Restore(data []byte) error   { return s.p.RestoreReplicaSnapshot(data) }
func (s *partitionSM) CanRestore(data []byte) bool { return s.p.HoldsReplicaSnapshot(data) == nil }
func (s *partitionSM) RangeRequest(snap []byte) ([]byte, error) {
	return s.p.ReplicaRangeRequest(snap)
}
func (s *partitionSM) ReadRange(req []byte, maxBytes int) ([]byte, error) {
	return s.p.ReadReplicaRange(req, maxBytes)
}
func (s *partitionSM) WriteRange(snap, resp []byte) ([]byte, bool, error) {
	return s.p.WriteReplicaRange(snap, resp)
}

var _ cluster.RangeStateMachine = (*partitionSM)(nil)

// partitionReplica is stream's view of a partition's group.
type partitionReplica struct {
	g    *cluster.Group
	self uint64
}

func (r partitionReplica) Propose(ctx context.Context, cmd []byte) (any, error) {
	return r.Start(cmd).Wait(ctx)
}
func (r partitionReplica) Start(cmd []byte) stream.ReplicaProposal {
	return partitionProposal{r.g.Start(cmd)}
}

// partitionProposal is a proposal of a partition's group, its errors in stream's terms.
type partitionProposal struct{ p *cluster.Proposal }

func (p partitionProposal) Wait(ctx context.Context) (any, error) {
	v, err := p.p.Wait(ctx)
	if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrLeaderChanged) {
		err = fmt.Errorf("%w: %w", stream.ErrNotLeader, err)
	}
	return v, err
}
func (r partitionReplica) Leader() uint64    { return r.g.Leader() }
func (r partitionReplica) Term() uint64      { return r.g.Term() }
func (r partitionReplica) Voters() []uint64  { return r.g.Voters() }
func (r partitionReplica) InSync() []uint64  { return r.g.InSync() }
func (r partitionReplica) Self() uint64      { return r.self }
func (r partitionReplica) LeaderReady() bool { return r.g.LeaderReady() }

// catalogSM is the metadata group's state machine: the topic manager's catalog, the user
// store (users, vhosts, permissions, limits) and the Kafka ACLs (nil without
// --kafka-authorizer acl: that node ignores ACL changes).
type catalogSM struct {
	m     *stream.Manager
	users *auth.Store
	acls  *acl.Authorizer
}

func (s catalogSM) Apply(e cluster.Entry) (any, error) {
	var head struct {
		Op string `json:"op"`
	}
	if err := json.Unmarshal(e.Data, &head); err != nil {
		return nil, fmt.Errorf("cannot decode catalog command: %w", err)
	}
	switch head.Op {
	case auth.ReplicatedOp:
		return nil, s.users.ApplyReplicated(e.Data)
	case acl.ReplicatedOp:
		if s.acls == nil {
			return nil, nil
		}
		return nil, s.acls.ApplyReplicated(e.Data)
	}
	return nil, s.m.ApplyCatalogCommand(e.Data)
}

// Snapshot is the catalog's snapshot (a JSON object) with two more members, "auth_users" and
// "kafka_acls"; a snapshot without them (taken by an older yard) leaves the users and ACLs as
// they are on restore.
func (s catalogSM) Snapshot() ([]byte, error) {
	data, err := s.m.CatalogSnapshot()
	if err != nil {
		return nil, err
	}
	var img map[string]json.RawMessage
	if err := json.Unmarshal(data, &img); err != nil {
		return nil, fmt.Errorf("cannot extend catalog snapshot: %w", err)
	}
	if img[snapUsers], err = s.users.ReplicatedState(); err != nil {
		return nil, err
	}
	if s.acls != nil {
		if img[snapACLs], err = s.acls.ReplicatedState(); err != nil {
			return nil, err
		}
	}
	return json.Marshal(img)
}

// The metadata snapshot's members beside the catalog's.
const (
	snapUsers = "auth_users"
	snapACLs  = "kafka_acls"
)

func (s catalogSM) Restore(data []byte) error {
	if err := s.m.RestoreCatalog(data); err != nil {
		return err
	}
	var img map[string]json.RawMessage
	if err := json.Unmarshal(data, &img); err != nil {
		return fmt.Errorf("cannot decode catalog snapshot: %w", err)
	}
	if raw, ok := img[snapUsers]; ok {
		if err := s.users.RestoreReplicated(raw); err != nil {
			return err
		}
	}
	if raw, ok := img[snapACLs]; ok && s.acls != nil {
		return s.acls.RestoreReplicated(raw)
	}
	return nil
}

// seedAuth makes the users and ACLs of the metadata group's first leader the cluster's, if
// no replicated change happened yet (every node started with its own users.json): it waits
// until this node either applied a replicated change or leads, then proposes its state as
// revision 1. Of several seeds (leadership moved) the first committed wins; later ones are
// refused by the compare and set.
func (b *Broker) seedAuth(ctx context.Context, g *cluster.Group) {
	self := uint64(b.cfg.NodeID)
	for {
		pending := false
		if b.users.Revision() == 0 {
			pending = true
			if g.Leader() == self && g.LeaderReady() {
				if err := b.users.Seed(); err != nil && !errors.Is(err, auth.ErrConflict) {
					b.log.Warn("cannot seed the cluster's users", "err", err)
				}
			}
		}
		if b.authz != nil && b.authz.Revision() == 0 {
			pending = true
			if g.Leader() == self && g.LeaderReady() {
				if err := b.authz.Seed(); err != nil && !errors.Is(err, acl.ErrConflict) {
					b.log.Warn("cannot seed the cluster's kafka ACLs", "err", err)
				}
			}
		}
		if !pending {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(registerRetryMs * time.Millisecond):
		}
	}
}

// authReplicator proposes the user store's and the ACLs' commands to the metadata group,
// telling them which failures leave the outcome unknown (they send the command again).
type authReplicator struct{ g *cluster.Group }

func (r authReplicator) Replicate(ctx context.Context, cmd []byte) error {
	_, err := r.g.Propose(ctx, cmd)
	if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrLeaderChanged) {
		err = fmt.Errorf("%w: %w", auth.ErrUnknownOutcome, err)
	}
	return err
}

// groupReplicator proposes catalog commands to the metadata group.
type groupReplicator struct{ g *cluster.Group }

func (r groupReplicator) Replicate(ctx context.Context, cmd []byte) error {
	_, err := r.g.Propose(ctx, cmd)
	return err
}
