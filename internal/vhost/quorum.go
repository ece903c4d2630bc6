package vhost

// Replicated quorum queues, on a cluster node (SetQuorumCluster): a quorum queue's
// declaration goes through the cluster, which calls AttachQuorum on every node; the queue's
// messages and deliveries are its replica's (queue.Options.Replica, internal/quorum). Without
// a cluster a quorum queue is the local durable queue queuetype.go describes.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// QuorumCluster replicates quorum queues.
type QuorumCluster interface {
	// Declare replicates a quorum queue's declaration (kind "", args as the vhost encodes
	// them), a binding to one (kind "bind" or "unbind", encodeBinding), or its deletion (kind
	// "delete", no args), and returns once this node has applied it (AttachQuorum,
	// AttachBinding or DetachQuorum ran).
	Declare(ctx context.Context, kind, vhost, name string, args []byte) error
	// Replica makes this node's replica of the queue (and its Raft group, whose id derives
	// from index, AttachQuorum's); deadLetter performs the queue's dead-lettering.
	Replica(vhost, name string, index uint64, args map[string]any, deadLetter func([]queue.DeadLetter)) (queue.Replica, error)
}

// declareTimeout bounds the wait for a replicated declaration.
const declareTimeout = 10 * time.Second

// SetQuorumCluster makes quorum queues replicated through c; call it before serving.
func (h *Hosts) SetQuorumCluster(c QuorumCluster) { h.quorum = c }

// replicatedUnsupported are the quorum queue arguments a replicated queue does not
// implement yet: refused rather than ignored.
var replicatedUnsupported = []string{"x-dead-letter-strategy"}

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
	if err := v.hosts.quorum.Declare(ctx, "", v.name, d.Name, v.hosts.encodeArgs(withTypeDefaults(d.Args))); err != nil {
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
// declaration is applied (and again after a restart). A queue it already has is kept. index
// tells this declaration from an earlier one of the same name (QuorumCluster.Replica).
func (h *Hosts) AttachQuorum(vhostName, name string, index uint64, encodedArgs []byte) error {
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
	r, err := h.quorum.Replica(vhostName, name, index, opts.Args, opts.DeadLetter)
	if err != nil {
		return fmt.Errorf("cannot attach quorum queue %q: %w", name, err)
	}
	opts.Replica = r
	qs.Queue = queue.New(name, opts)
	v.queues[name] = qs
	return nil
}

// DetachQuorum removes a replicated queue deleted through the cluster, on every node as the
// deletion is applied: its local consumers are cancelled (basic.cancel, or their channel
// closed, as for any deleted queue) and its bindings removed. The cluster then removes its
// replica and Raft group.
func (h *Hosts) DetachQuorum(vhostName, name string) {
	v := h.Get(vhostName)
	if v == nil {
		return
	}
	qs := v.Queue(name)
	if qs == nil || !qs.Replicated {
		return
	}
	v.DeleteQueue(qs)
}

// replicaDeleter is a replica that decides a delete by its replicated state
// (quorum.Replica.Delete) and has the cluster delete the queue's declaration.
type replicaDeleter interface {
	Delete(ifUnused, ifEmpty bool) (int, error)
}

// deleteReplicated deletes a replicated queue through the cluster, unless ifUnused and it
// has consumers (on any node) or ifEmpty and it has ready messages, as the queue's
// replicated state says when the delete is applied (the same answer through every node).
// n is how many ready messages it had.
func (v *VHost) deleteReplicated(qs *Queue, ifUnused, ifEmpty bool) (int, error) {
	if d, ok := qs.Options().Replica.(replicaDeleter); ok {
		n, err := d.Delete(ifUnused, ifEmpty)
		switch {
		case errors.Is(err, queue.ErrInUse):
			return 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' in use", qs.Name(), v.name)
		case errors.Is(err, queue.ErrNotEmpty):
			return 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' not empty", qs.Name(), v.name)
		case err != nil:
			return 0, refuse(ErrInternal, "cannot delete quorum queue '%s' in vhost '%s' through the cluster: %v", qs.Name(), v.name, err)
		}
		return n, nil
	}
	ready, _, consumers := qs.Counts()
	if ifUnused && consumers > 0 {
		return 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' in use", qs.Name(), v.name)
	}
	if ifEmpty && ready > 0 {
		return 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' not empty", qs.Name(), v.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), declareTimeout)
	defer cancel()
	if err := v.hosts.quorum.Declare(ctx, "delete", v.name, qs.Name(), nil); err != nil {
		return 0, refuse(ErrInternal, "cannot delete quorum queue '%s' in vhost '%s' through the cluster: %v", qs.Name(), v.name, err)
	}
	return ready, nil
}

// Touch records a use of the queue for x-expires (a redeclaration, a passive declare): a
// replicated queue's through its replica (the queue's state machine decides its expiry).
func (qs *Queue) Touch() {
	if t, ok := qs.Options().Replica.(interface{ Touch() }); ok {
		t.Touch()
		return
	}
	qs.Queue.Touch()
}

// LeaderNode is the cluster node leading a replicated queue's Raft group (0: unknown, or
// not a replicated queue).
func (qs *Queue) LeaderNode() uint64 {
	if l, ok := qs.Options().Replica.(interface{ Leader() uint64 }); ok {
		return l.Leader()
	}
	return 0
}

// replicatedBinding is a binding to a replicated queue with its source exchange, as the
// cluster replicates it: every node declares the exchange if it has none, and binds.
type replicatedBinding struct {
	Exchange   string `json:"exchange"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	XArgs      []byte `json:"xargs,omitempty"`
	Queue      string `json:"queue"`
	Key        string `json:"key"`
	Args       []byte `json:"args,omitempty"`
}

// replicateBinding binds (kind "bind") or unbinds ("unbind") b, whose destination is a
// replicated queue, through the cluster; src is its source exchange.
func (v *VHost) replicateBinding(kind string, b route.Binding, src route.Exchange) error {
	rb := replicatedBinding{Exchange: src.Name, Type: src.Type, AutoDelete: src.AutoDelete, Internal: src.Internal,
		XArgs: v.hosts.encodeArgs(src.Args), Queue: b.Dest.Name, Key: b.Key, Args: v.hosts.encodeArgs(b.Args)}
	data, err := json.Marshal(rb)
	if err != nil {
		return refuse(ErrInternal, "cannot encode binding: %v", err)
	}
	name := rb.Exchange + "\x00" + rb.Queue + "\x00" + rb.Key + "\x00" + hex.EncodeToString(rb.Args)
	ctx, cancel := context.WithTimeout(context.Background(), declareTimeout)
	defer cancel()
	if err := v.hosts.quorum.Declare(ctx, kind, v.name, name, data); err != nil {
		return refuse(ErrInternal, "cannot %s queue '%s' in vhost '%s' through the cluster: %v", kind, b.Dest.Name, v.name, err)
	}
	return nil
}

// AttachBinding applies a replicated binding (kind "bind") or unbinding ("unbind") on this
// node, declaring its source exchange (durable) if this node has none.
func (h *Hosts) AttachBinding(kind, vhostName string, data []byte) error {
	v := h.Get(vhostName)
	if v == nil {
		return nil
	}
	var rb replicatedBinding
	if err := json.Unmarshal(data, &rb); err != nil {
		return fmt.Errorf("cannot decode replicated binding: %w", err)
	}
	xargs, err := h.decodeArgs(rb.XArgs)
	if err != nil {
		return fmt.Errorf("cannot decode replicated binding: %w", err)
	}
	args, err := h.decodeArgs(rb.Args)
	if err != nil {
		return fmt.Errorf("cannot decode replicated binding: %w", err)
	}
	b := route.Binding{Source: rb.Exchange, Dest: route.Dest{Name: rb.Queue}, Key: rb.Key, Args: args}
	if kind == "unbind" {
		if err := v.topo.Unbind(b); err != nil {
			return nil // gone here already
		}
	} else {
		if _, _, err := v.topo.Declare(route.Exchange{Name: rb.Exchange, Type: rb.Type, Durable: true, AutoDelete: rb.AutoDelete, Internal: rb.Internal, Args: xargs}); err != nil {
			return fmt.Errorf("cannot declare exchange %q of a replicated binding: %w", rb.Exchange, err)
		}
		if err := v.topo.Bind(b); err != nil {
			return fmt.Errorf("cannot apply replicated binding from %q: %w", rb.Exchange, err)
		}
	}
	if err := h.Save(); err != nil {
		h.log.Error("cannot save durable topology", "err", err)
	}
	return nil
}
