package vhost

// The queue registry's operations: declare (with the checks RabbitMQ makes, in its wording),
// look up with exclusive ownership, delete (if-unused, if-empty), and the queues that exist
// only for one connection (direct reply-to).

import (
	"errors"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
)

// QueueDeclaration is a queue declaration that may create the queue (not a passive one).
type QueueDeclaration struct {
	Name                           string // never "": the front end names server-named queues
	Durable, Exclusive, AutoDelete bool
	Args                           map[string]any
	Owner                          any // the declaring connection, which owns an exclusive queue
}

// DeclareQueue creates the queue, or checks that the queue of that name is one owner may use
// and is equivalent to the declaration. It reports whether it created the queue; a queue is
// created (and stays) even when saving the topology then fails.
func (v *VHost) DeclareQueue(d QueueDeclaration) (qs *Queue, created bool, err error) {
	v.mu.Lock()
	qs = v.queues[d.Name]
	if qs != nil {
		v.mu.Unlock()
		if err := v.access(qs, d.Owner); err != nil {
			return nil, false, err
		}
		if err := v.equivalent(d, qs.Options()); err != nil {
			return nil, false, err
		}
		qs.Touch()
		return qs, false, nil
	}
	if isStreamArgs(d.Args) {
		v.mu.Unlock()
		return v.declareStream(d)
	}
	if dlx, ok := d.Args["x-dead-letter-exchange"]; ok && !isString(dlx) {
		v.mu.Unlock()
		return nil, false, refuse(ErrPrecondition, "invalid type '%s' for arg 'x-dead-letter-exchange' in queue '%s' in vhost '%s'", FieldType(dlx), d.Name, v.name)
	}
	if err := v.checkQueueType(d); err != nil {
		v.mu.Unlock()
		return nil, false, err
	}
	if e := validateArgs(d.Args); e != nil {
		v.mu.Unlock()
		return nil, false, v.invalidArg(e, d.Name)
	}
	if v.hosts.quorum != nil && queueType(d.Args) == queueTypeQuorum {
		v.mu.Unlock()
		return v.declareReplicated(d)
	}
	var owner any
	if d.Exclusive {
		owner = d.Owner
	}
	qs, err = v.newQueue(d.Name, queue.Options{Durable: d.Durable, Exclusive: d.Exclusive, AutoDelete: d.AutoDelete, Args: d.Args}, owner)
	if err != nil {
		v.mu.Unlock()
		return nil, false, refuse(ErrInternal, "cannot open the store of queue '%s' in vhost '%s': %v", d.Name, v.name, err)
	}
	v.queues[d.Name] = qs
	v.mu.Unlock()
	return qs, true, v.hosts.persist(d.Durable && !d.Exclusive)
}

// newQueue makes a classic or quorum queue with its hooks and its store; it does not
// register it.
func (v *VHost) newQueue(name string, opts queue.Options, owner any) (*Queue, error) {
	qs := &Queue{Owner: owner}
	opts = v.queueOptions(name, opts, qs)
	if open := v.hosts.cfg.QueueStore; open != nil {
		store, err := open(v.name, name, opts)
		if err != nil {
			return nil, err
		}
		opts.Store = store
	}
	qs.Queue = queue.New(name, opts)
	qs.Quorum = queueType(opts.Args) == queueTypeQuorum
	return qs, nil
}

// declareStream creates a stream queue (there was none of that name).
func (v *VHost) declareStream(d QueueDeclaration) (*Queue, bool, error) {
	if p := invalidProperty(d); p != "" {
		return nil, false, refuse(ErrPrecondition, "invalid property '%s' for queue '%s' in vhost '%s'", p, d.Name, v.name)
	}
	part, err := v.hosts.attachStream(d.Name, d.Args)
	if err != nil {
		return nil, false, refuse(ErrPrecondition, "cannot declare stream queue '%s' in vhost '%s': %v", d.Name, v.name, err)
	}
	v.mu.Lock()
	qs := v.queues[d.Name]
	created := qs == nil
	if created {
		qs = newStreamQueue(d.Name, d.Args, part)
		v.queues[d.Name] = qs
	}
	v.mu.Unlock()
	return qs, created, v.hosts.persist(true)
}

// newStreamQueue is the registry's entry for a stream queue: the topic holds its messages,
// the queue engine only its consumers.
func newStreamQueue(name string, args map[string]any, part *Stream) *Queue {
	return &Queue{Queue: queue.New(name, queue.Options{Durable: true, Args: args}), Stream: part}
}

// equivalent checks a redeclaration against the queue's options, as RabbitMQ does: the
// properties, then each argument the queue's type knows (queueArgs), compared by type class
// and value (10 and 10.0 differ). Arguments the type does not know take no part.
func (v *VHost) equivalent(d QueueDeclaration, got queue.Options) error {
	diff := func(arg string, received, current any) error {
		return refuse(ErrPrecondition, "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, d.Name, v.name, received, current)
	}
	switch {
	case got.Durable != d.Durable:
		return diff("durable", d.Durable, got.Durable)
	case got.Exclusive != d.Exclusive:
		return v.locked(d.Name)
	case got.AutoDelete != d.AutoDelete:
		return diff("auto_delete", d.AutoDelete, got.AutoDelete)
	}
	typ := queueType(got.Args)
	for i := range queueArgs {
		a := &queueArgs[i]
		if !a.knownFor(typ) {
			continue
		}
		received, inDecl := d.Args[a.name]
		current, inQueue := got.Args[a.name]
		switch {
		case inDecl && inQueue && sameArg(received, current):
			continue
		case !inDecl && !inQueue:
			continue
		case a.name == "x-queue-type" && queueType(d.Args) == typ:
			continue // classic, spelt out or not
		case !inDecl && defaultedArg(a.name, current, got.Args):
			continue
		}
		return refuse(ErrPrecondition, "inequivalent arg '%s' for queue '%s' in vhost '%s': received %s but current is %s",
			a.name, d.Name, v.name, describeArg(received, inDecl), describeArg(current, inQueue))
	}
	return nil
}

// invalidArg is RabbitMQ's refusal of a bad argument.
func (v *VHost) invalidArg(e *argError, queueName string) error {
	return refuse(ErrPrecondition, "invalid arg '%s' for queue '%s' in vhost '%s': %s", e.name, queueName, v.name, e.reason)
}

// CheckConsumeArgs checks basic.consume's arguments on the named queue as RabbitMQ does
// (x-priority must be an integer).
func (v *VHost) CheckConsumeArgs(queueName string, args map[string]any) error {
	if e := checkConsumeArgs(args); e != nil {
		return v.invalidArg(e, queueName)
	}
	return nil
}

func (v *VHost) noQueue(name string) error {
	return refuse(ErrNotFound, "no queue '%s' in vhost '%s'", name, v.name)
}

func (v *VHost) locked(name string) error {
	return refuse(ErrLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, v.name)
}

// access refuses another connection's exclusive queue.
func (v *VHost) access(qs *Queue, owner any) error {
	if qs.Owner != nil && qs.Owner != owner {
		return v.locked(qs.Name())
	}
	return nil
}

// LookupQueue finds a queue owner may use: ErrNotFound if there is none, ErrLocked if it is
// another connection's exclusive queue.
func (v *VHost) LookupQueue(name string, owner any) (*Queue, error) {
	qs := v.Queue(name)
	if qs == nil {
		return nil, v.noQueue(name)
	}
	if err := v.access(qs, owner); err != nil {
		return nil, err
	}
	return qs, nil
}

// DeleteQueueIf deletes the queue of that name and its bindings, unless ifUnused and it has
// consumers or ifEmpty and it has messages; its consumers are told by the queue. Deleting a
// queue that does not exist does nothing (qs is nil), as in RabbitMQ. n is how many messages
// it had.
func (v *VHost) DeleteQueueIf(name string, owner any, ifUnused, ifEmpty bool) (qs *Queue, n int, err error) {
	if qs = v.Queue(name); qs == nil {
		return nil, 0, nil
	}
	if err := v.access(qs, owner); err != nil {
		return nil, 0, err
	}
	if qs.Replicated {
		if n, err = v.deleteReplicated(qs, ifUnused, ifEmpty); err != nil {
			return nil, 0, err
		}
		return qs, n, nil
	}
	n, err = v.deleteQueue(qs, ifUnused, ifEmpty)
	switch {
	case errors.Is(err, queue.ErrInUse):
		return nil, 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' in use", name, v.name)
	case errors.Is(err, queue.ErrNotEmpty):
		return nil, 0, refuse(ErrPrecondition, "queue '%s' in vhost '%s' not empty", name, v.name)
	}
	if o := qs.Options(); o.Durable && !o.Exclusive {
		if err := v.hosts.persist(true); err != nil {
			return qs, n, err
		}
	}
	return qs, n, nil
}

// DeleteQueue deletes qs unconditionally (its exclusive owner is gone, it lost its last
// consumer and is auto-delete, or it expired). A failure to save the topology is logged.
func (v *VHost) DeleteQueue(qs *Queue) {
	v.deleteQueue(qs, false, false)
	if o := qs.Options(); o.Durable && !o.Exclusive {
		if err := v.hosts.Save(); err != nil {
			v.log.Error("cannot save durable topology", "err", err)
		}
	}
}

// deleteQueue deletes the queue, its registration, its bindings and a stream's topic.
func (v *VHost) deleteQueue(qs *Queue, ifUnused, ifEmpty bool) (int, error) {
	name := qs.Name()
	n, err := qs.Delete(ifUnused, ifEmpty)
	if errors.Is(err, queue.ErrInUse) || errors.Is(err, queue.ErrNotEmpty) {
		return 0, err
	}
	if err != nil && !errors.Is(err, queue.ErrDeleted) {
		v.log.Warn("cannot delete queue storage", "queue", name, "err", err)
	}
	v.mu.Lock()
	if v.queues[name] == qs {
		delete(v.queues, name)
	}
	v.mu.Unlock()
	if qs.Stream != nil && v.hosts.cfg.Streams != nil {
		if err := v.hosts.cfg.Streams.DeleteTopic(name); err != nil && !errors.Is(err, stream.ErrUnknownTopic) {
			v.log.Warn("cannot delete the topic of stream queue", "queue", name, "err", err)
		}
	}
	v.topo.RemoveQueue(name)
	return n, nil
}

// AddExclusive registers a new in-memory, exclusive, auto-delete queue owned by owner, with
// none of the features arguments give (direct reply-to's queues).
func (v *VHost) AddExclusive(name string, owner any) *Queue {
	qs := &Queue{Queue: queue.New(name, queue.Options{Exclusive: true, AutoDelete: true}), Owner: owner}
	v.mu.Lock()
	v.queues[name] = qs
	v.mu.Unlock()
	return qs
}
