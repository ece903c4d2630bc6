package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/quorum"
	"github.com/yardmq/yard/internal/vhost"
)

// topologyGroup is the Raft group replicating the AMQP quorum queues' declarations.
const topologyGroup = ^uint64(0) - 1

// quorumGroupID is a quorum queue's Raft group, the same on every node: a hash of its vhost,
// name and declaring entry of the topology group (index; 0 for the queues declared before
// deletion existed), so that a queue deleted and declared again gets a new group.
func quorumGroupID(vhostName, name string, index uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte("amqp-quorum\x00"))
	h.Write([]byte(vhostName))
	h.Write([]byte{0})
	h.Write([]byte(name))
	if index != 0 {
		h.Write([]byte{0})
		h.Write(binary.BigEndian.AppendUint64(nil, index))
	}
	id := h.Sum64()
	if id == metadataGroup || id == topologyGroup {
		id = 2
	}
	return id
}

// quorumCluster replicates the AMQP quorum queues of a cluster node (vhost.QuorumCluster).
type quorumCluster struct {
	host   *cluster.Host
	voters []uint64
	log    *slog.Logger
	decls  *cluster.Group // set once created

	mu       sync.Mutex
	replicas map[uint64]*quorum.Replica // by group id
}

// openQuorum creates the topology group on a cluster node serving AMQP.
func (b *Broker) openQuorum(host *cluster.Host, voters []uint64) (*quorumCluster, error) {
	qc := &quorumCluster{host: host, voters: voters, log: b.log.With("component", "quorum"), replicas: map[uint64]*quorum.Replica{}}
	b.hosts.SetQuorumCluster(qc)
	decls := quorum.NewDeclarations(func(d quorum.Declaration) error {
		switch d.Kind {
		case quorum.KindQueue:
			return b.hosts.AttachQuorum(d.VHost, d.Name, d.Index, d.Args)
		case quorum.KindDelete:
			// the local queue first (its consumers are cancelled, its bindings go), then its
			// replica and Raft group, for good
			b.hosts.DetachQuorum(d.VHost, d.Name)
			qc.remove(quorumGroupID(d.VHost, d.Name, d.Index))
			return nil
		}
		return b.hosts.AttachBinding(d.Kind, d.VHost, d.Args)
	})
	g, err := host.CreateGroup(topologyGroup, decls, voters)
	if err != nil {
		return nil, fmt.Errorf("cannot create the AMQP topology group: %w", err)
	}
	qc.decls = g
	if err := decls.Start(); err != nil {
		qc.log.Error("cannot attach every quorum queue", "err", err)
	}
	return qc, nil
}

func (qc *quorumCluster) Declare(ctx context.Context, kind, vhostName, name string, args []byte) error {
	return qc.propose(ctx, quorum.EncodeDeclare(quorum.Declaration{Kind: kind, VHost: vhostName, Name: name, Args: args}))
}

// deleteDeclaration deletes the declaration of the queue declared by the topology group's
// entry index (not a later queue of the same name), and returns once this node applied it.
func (qc *quorumCluster) deleteDeclaration(ctx context.Context, vhostName, name string, index uint64) error {
	return qc.propose(ctx, quorum.EncodeDeclare(quorum.Declaration{Kind: quorum.KindDelete, VHost: vhostName, Name: name, Index: index, Exact: true}))
}

func (qc *quorumCluster) propose(ctx context.Context, cmd []byte) error {
	for {
		_, err := qc.decls.Propose(ctx, cmd)
		if err == nil || !(errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrLeaderChanged)) {
			return err // a declaration applied twice is applied once: a retry is safe
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(registerRetryMs * time.Millisecond):
		}
	}
}

func (qc *quorumCluster) Replica(vhostName, name string, index uint64, args map[string]any, deadLetter func([]queue.DeadLetter)) (queue.Replica, error) {
	cfg := quorum.NoLimits
	if n, ok := vhost.IntArg(args["x-delivery-limit"]); ok {
		cfg.DeliveryLimit = int64(n)
	}
	if n, ok := vhost.IntArg(args["x-max-length"]); ok {
		cfg.MaxLength = int64(n)
	}
	if n, ok := vhost.IntArg(args["x-max-length-bytes"]); ok {
		cfg.MaxLengthBytes = int64(n)
	}
	if n, ok := vhost.IntArg(args["x-message-ttl"]); ok {
		cfg.MessageTTL = int64(n)
	}
	if n, ok := vhost.IntArg(args["x-expires"]); ok {
		cfg.Expires = int64(n)
	}
	if v, ok := args["x-single-active-consumer"].(bool); ok {
		cfg.SingleActive = v
	}
	if s, ok := args["x-overflow"].(string); ok {
		cfg.Overflow = s
	}
	r := quorum.NewReplica(name, qc.host.ID(), cfg, deadLetter, qc.log.With("vhost", vhostName, "queue", name))
	r.OnDeleted(func(ctx context.Context) error { return qc.deleteDeclaration(ctx, vhostName, name, index) })
	id := quorumGroupID(vhostName, name, index)
	g, err := qc.host.CreateGroup(id, r.StateMachine(), qc.voters)
	if err != nil {
		return nil, fmt.Errorf("cannot replicate quorum queue %q: %w", name, err)
	}
	r.SetGroup(g, qc.host.PeerAlive)
	qc.mu.Lock()
	qc.replicas[id] = r
	qc.mu.Unlock()
	return r, nil
}

// remove stops the replica of group id and removes the group from this node for good (a
// deleted queue; called from the topology group's apply, on every node).
func (qc *quorumCluster) remove(id uint64) {
	qc.mu.Lock()
	r := qc.replicas[id]
	delete(qc.replicas, id)
	qc.mu.Unlock()
	qc.host.RemoveGroup(id)
	if r != nil {
		// not here: a proposal the proposer waits for fails once this round ends
		go r.Close()
	}
}

// close stops the replicas' proposers (after the host closed: their proposals fail).
func (qc *quorumCluster) close() {
	qc.mu.Lock()
	rs := qc.replicas
	qc.replicas = map[uint64]*quorum.Replica{}
	qc.mu.Unlock()
	for _, r := range rs {
		r.Close()
	}
}
