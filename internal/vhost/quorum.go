package vhost

// Replicated quorum queues, on a cluster node (SetQuorumCluster): a quorum queue's
// declaration goes through the cluster, which calls AttachQuorum on every node; the queue's
// messages and deliveries are its replica's (queue.Options.Replica, internal/quorum). Without
// a cluster a quorum queue is the local durable queue queuetype.go describes.

import (
	"context"
	"fmt"
	"time"

	"github.com/yardmq/yard/internal/queue"
)

// QuorumCluster replicates quorum queues.
type QuorumCluster interface {
	// Declare replicates a quorum queue's declaration (args as the vhost encodes them) and
	// returns once this node has applied it (AttachQuorum ran).
	Declare(ctx context.Context, vhost, name string, args []byte) error
	// Replica makes this node's replica of the queue (and its Raft group); deadLetter
	// performs the queue's dead-lettering.
	Replica(vhost, name string, args map[string]any, deadLetter func([]queue.DeadLetter)) (queue.Replica, error)
}

// declareTimeout bounds the wait for a replicated declaration.
const declareTimeout = 10 * time.Second

// SetQuorumCluster makes quorum queues replicated through c; call it before serving.
func (h *Hosts) SetQuorumCluster(c QuorumCluster) { h.quorum = c }

// replicatedUnsupported are the quorum queue arguments a replicated queue does not
// implement yet: refused rather than ignored.
var replicatedUnsupported = []string{"x-expires", "x-message-ttl", "x-single-active-consumer", "x-dead-letter-strategy"}

// declareReplicated declares a quorum queue through the cluster (there was none of that
// name on this node; the checks of DeclareQueue passed).
func (v *VHost) declareReplicated(d QueueDeclaration) (*Queue, bool, error) {
	for _, a := range replicatedUnsupported {
		if _, ok := d.Args[a]; ok {
			return nil, false, refuse(ErrPrecondition, "invalid arg '%s' for queue '%s' in vhost '%s' of queue type quorum: not supported on a cluster yet", a, d.Name, v.name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), declareTimeout)
	defer cancel()
	if err := v.hosts.quorum.Declare(ctx, v.name, d.Name, v.hosts.encodeArgs(withTypeDefaults(d.Args))); err != nil {
		return nil, false, refuse(ErrInternal, "cannot declare quorum queue '%s' in vhost '%s' through the cluster: %v", d.Name, v.name, err)
	}
	qs := v.Queue(d.Name)
	if qs == nil {
		return nil, false, refuse(ErrInternal, "cannot declare quorum queue '%s' in vhost '%s': the cluster did not attach it", d.Name, v.name)
	}
	if err := v.equivalent(d, qs.Options()); err != nil {
		return nil, false, err // declared meanwhile elsewhere, differently
	}
	return qs, true, nil
}

// AttachQuorum registers a quorum queue declared through the cluster, on every node as the
// declaration is applied (and again after a restart). A queue it already has is kept.
func (h *Hosts) AttachQuorum(vhostName, name string, encodedArgs []byte) error {
	v := h.Get(vhostName)
	if v == nil {
		h.log.Warn("quorum queue of an unknown vhost not attached", "vhost", vhostName, "queue", name)
		return nil
	}
	args, err := h.decodeArgs(encodedArgs)
	if err != nil {
		return fmt.Errorf("cannot attach quorum queue %q: %w", name, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.queues[name] != nil {
		return nil
	}
	qs := &Queue{Quorum: true, Replicated: true}
	opts := v.queueOptions(name, queue.Options{Durable: true, Args: args}, qs)
	opts.OnExpire = nil
	r, err := h.quorum.Replica(vhostName, name, opts.Args, opts.DeadLetter)
	if err != nil {
		return fmt.Errorf("cannot attach quorum queue %q: %w", name, err)
	}
	opts.Replica = r
	qs.Queue = queue.New(name, opts)
	v.queues[name] = qs
	return nil
}

// LeaderNode is the cluster node leading a replicated queue's Raft group (0: unknown, or
// not a replicated queue).
func (qs *Queue) LeaderNode() uint64 {
	if l, ok := qs.Options().Replica.(interface{ Leader() uint64 }); ok {
		return l.Leader()
	}
	return 0
}
