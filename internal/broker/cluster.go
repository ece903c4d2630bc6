package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

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
	host, err := cluster.Open(cluster.Config{
		NodeID:   uint64(b.cfg.NodeID),
		Dir:      b.layout.Raft(),
		Listener: b.clusterLn,
		Peers:    peers,
		Logger:   b.log.With("component", "cluster"),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot open the cluster's raft host: %w", err), release())
	}
	g, err := host.CreateGroup(metadataGroup, catalogSM{streams}, slices.Sorted(maps.Keys(peers)))
	if err != nil {
		return nil, errors.Join(err, host.Close(), release())
	}
	streams.SetCatalogReplicator(groupReplicator{g})
	b.log.Info("cluster member", "node", b.cfg.NodeID, "peers", b.cfg.Peers)
	closeAll := func() error { return errors.Join(host.Close(), release()) }
	return &frontEnd{
		serve: func([]boundListener) func(context.Context) error {
			return func(context.Context) error { return closeAll() }
		},
		abort: closeAll,
	}, nil
}

// catalogSM is the metadata group's state machine: the topic manager's catalog.
type catalogSM struct{ m *stream.Manager }

func (s catalogSM) Apply(e cluster.Entry) error { return s.m.ApplyCatalogCommand(e.Data) }
func (s catalogSM) Snapshot() ([]byte, error)   { return s.m.CatalogSnapshot() }
func (s catalogSM) Restore(data []byte) error   { return s.m.RestoreCatalog(data) }

// groupReplicator proposes catalog commands to the metadata group.
type groupReplicator struct{ g *cluster.Group }

func (r groupReplicator) Replicate(ctx context.Context, cmd []byte) error {
	return r.g.Propose(ctx, cmd)
}
