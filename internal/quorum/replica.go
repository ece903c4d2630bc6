package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/queue"
)

// Replica is a quorum queue on one cluster node: the state machine of the queue's Raft
// group (every node has one), and this node's consumers of it. It is the queue engine's
// queue.Replica (the AMQP front end's queue forwards publishes, consumers and settlements
// to it) and the state machine's Effects (it hands this node's deliveries to the consumers).
//
// Every command goes through the group: a publish is answered (confirmed) once its enqueue
// is committed and applied here; consumers, settlements and returns are proposed in order by
// one goroutine, retried while the group has no leader (each is idempotent).
type Replica struct {
	name string
	self uint64
	sm   *Queue
	log  *slog.Logger
	// deadLetter receives what the queue dead-letters, on the leader only.
	deadLetter func([]queue.DeadLetter)

	g holder[*cluster.Group]
	// retire deletes the queue's declaration through the cluster's topology group, once the
	// queue's state says it is deleted (OnDeleted); nil: nobody does.
	retire func(ctx context.Context) error

	mu        sync.Mutex // guards the fields below
	consumers map[string]*localConsumer
	held      map[uint64]string // delivered message id -> consumer key
	pending   []Delivery        // refused by their consumer (no room), retried by Kick
	seq       uint64
	boot      int64 // consumer keys are unique across runs of this node
	downSent  map[string]bool

	cmds chan proposal
	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// holder is a tiny typed holder (the group is set once, after the replica exists).
type holder[T any] struct {
	mu sync.Mutex
	v  T
}

func (a *holder[T]) Load() T {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.v
}

func (a *holder[T]) Store(v T) {
	a.mu.Lock()
	a.v = v
	a.mu.Unlock()
}

type localConsumer struct {
	id        ConsumerID
	tag       string
	owner     queue.Consumer
	q         *queue.Queue
	noAck     bool
	prefetch  uint32
	cancelled bool
}

// Proposal limits.
const (
	cmdQueueMax     = 4096
	proposeTimeout  = 30 * time.Second
	retryPause      = 50 * time.Millisecond
	publishDeadline = 30 * time.Second
)

// NewReplica makes the replica of queue name on node self; deadLetter (may be nil) performs
// dead-lettering, called on the group's leader only. Attach its group with SetGroup before
// use, and Close it when done.
func NewReplica(name string, self uint64, cfg Config, deadLetter func([]queue.DeadLetter), log *slog.Logger) *Replica {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Replica{name: name, self: self, log: log, deadLetter: deadLetter,
		consumers: map[string]*localConsumer{}, held: map[uint64]string{}, downSent: map[string]bool{},
		cmds: make(chan proposal, cmdQueueMax), kick: make(chan struct{}, 1), stop: make(chan struct{}),
		boot: time.Now().UnixNano()}
	r.sm = New(self, cfg, r)
	return r
}

// StateMachine is what the queue's Raft group applies.
func (r *Replica) StateMachine() cluster.StateMachine { return replicaSM{r} }

// OnDeleted sets how the queue's declaration is deleted from the cluster once its state
// machine says the queue is deleted (a queue.delete through Delete, or x-expires): by the
// node that asked for the delete, and else by the queue's leader, retried until done (the
// topology group's apply then removes this replica and its group on every node). Call it
// before SetGroup.
func (r *Replica) OnDeleted(retire func(ctx context.Context) error) { r.retire = retire }

// SetGroup attaches the replica to its group and starts proposing: first NodeDown for this
// node, so that what consumers of a previous run of this node held is returned. alive
// (may be nil) tells whether a node is up: while this node leads, the consumers of a node
// found down in every check for nodeDownAfter are removed and what they held returned.
func (r *Replica) SetGroup(g *cluster.Group, alive func(node uint64) bool) {
	r.g.Store(g)
	r.cmds <- proposal{c: NodeDown(r.self).At(time.Now().UnixMilli())}
	r.wg.Add(3)
	go r.proposer()
	go r.kicker()
	go r.expirer()
	if alive != nil {
		r.wg.Add(1)
		go r.monitor(alive)
	}
}

// monitorEvery is how often the leader checks the nodes of the consumers, and nodeDownAfter
// how long a node must be found down in every check before the leader returns what its
// consumers held: long enough that a node merely slow (a loaded machine, a GC pause) keeps
// its consumers, whose messages would otherwise be redelivered elsewhere (a node that
// restarts returns its previous run's consumers itself, at once).
const (
	monitorEvery  = 500 * time.Millisecond
	nodeDownAfter = 5 * time.Second
)

func (r *Replica) monitor(alive func(uint64) bool) {
	defer r.wg.Done()
	t := time.NewTicker(monitorEvery)
	defer t.Stop()
	suspect := map[uint64]time.Time{} // node -> first found down
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if r.g.Load().Leader() != r.self {
			clear(suspect)
			continue
		}
		now := time.Now()
		nodes := r.sm.ConsumerNodes()
		for n := range suspect {
			if !slices.Contains(nodes, n) {
				delete(suspect, n)
			}
		}
		for _, n := range nodes {
			since, found := suspect[n]
			switch {
			case alive(n):
				delete(suspect, n)
			case !found:
				suspect[n] = now
			case now.Sub(since) >= nodeDownAfter:
				delete(suspect, n)
				r.log.Info("quorum queue: returning the messages of a node found down", "queue", r.name, "node", n)
				r.enqueue(NodeDown(n).At(now.UnixMilli()))
			}
		}
	}
}

// expireEvery is how often the leader looks for expired messages.
const expireEvery = 100 * time.Millisecond

// retireEvery is how often the leader of a deleted queue retries deleting its declaration.
const retireEvery = time.Second

// expirer proposes, while this node leads, Expire with its clock once a ready message's
// expiry has passed, and ExpireQueue once the queue's own (x-expires) has: the apply decides
// from the command's time, on every replica alike. A queue found deleted has its
// declaration deleted through the topology group.
func (r *Replica) expirer() {
	defer r.wg.Done()
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	var retried, expiring time.Time
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if r.g.Load().Leader() != r.self {
			continue
		}
		now := time.Now()
		ms := now.UnixMilli()
		if r.sm.Deleted() {
			if r.retire != nil && now.Sub(retried) >= retireEvery {
				retried = now
				r.retireDeclaration()
			}
			continue
		}
		if next := r.sm.NextExpiry(); next != 0 && next <= ms {
			r.enqueue(Expire(ms))
		}
		if at := r.sm.ExpiresAt(); at != 0 && at <= ms && now.Sub(expiring) >= retireEvery {
			expiring = now // once a second at most while the first waits for its commit
			r.enqueue(ExpireQueue(ms))
		}
	}
}

// retireDeclaration deletes the deleted queue's declaration through the topology group.
func (r *Replica) retireDeclaration() error {
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	err := r.retire(ctx)
	if err != nil {
		r.log.Warn("quorum queue: cannot delete the declaration of a deleted queue yet", "queue", r.name, "err", err)
	}
	return err
}

// Delete deletes the queue (queue.delete), decided by the queue's replicated state: refused
// with queue.ErrInUse if ifUnused and it has consumers (of any node), queue.ErrNotEmpty if
// ifEmpty and it has ready messages; else the state machine marks it deleted and its
// declaration is deleted through the topology group (OnDeleted), which removes the queue
// from every node. n is how many ready messages it had.
func (r *Replica) Delete(ifUnused, ifEmpty bool) (n int, err error) {
	v, err := r.call(Delete(ifUnused, ifEmpty))
	if err != nil {
		return 0, fmt.Errorf("cannot delete queue %q: %w", r.name, err)
	}
	res, _ := v.(DeleteResult)
	switch {
	case res.InUse:
		return 0, fmt.Errorf("cannot delete queue %q: %w", r.name, queue.ErrInUse)
	case res.NotEmpty:
		return 0, fmt.Errorf("cannot delete queue %q: %w", r.name, queue.ErrNotEmpty)
	}
	if r.retire != nil {
		if err := r.retireDeclaration(); err != nil {
			return 0, fmt.Errorf("cannot delete queue %q: %w", r.name, err)
		}
	}
	return res.Ready, nil
}

// Touch records a use of the queue (a redeclaration, a passive declare) for x-expires; a
// queue without x-expires proposes nothing.
func (r *Replica) Touch() {
	if r.sm.cfg.Expires > 0 {
		r.enqueue(Touch(time.Now().UnixMilli()))
	}
}

// Close stops proposing.
func (r *Replica) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// State is the replica's state machine, for its counts and tests.
func (r *Replica) State() *Queue { return r.sm }

// replicaSM applies the group's entries to the state machine, and re-attaches this node's
// live consumers when the log says this node's consumers went down (NodeDown(self): on
// start, or if a leader found this node silent), so that they are served again.
type replicaSM struct{ r *Replica }

func (s replicaSM) Apply(e cluster.Entry) (any, error) {
	v, err := s.r.sm.Apply(e)
	if c, derr := DecodeCommand(e.Data); derr == nil && c.kind == kindNodeDown && c.consumer.Node == s.r.self {
		s.r.reattach()
	}
	return v, err
}
func (s replicaSM) Snapshot() ([]byte, error) { return s.r.sm.Snapshot() }
func (s replicaSM) Restore(data []byte) error { return s.r.sm.Restore(data) }

func (r *Replica) reattach() {
	r.mu.Lock()
	var cmds []Command
	for _, lc := range r.consumers {
		if !lc.cancelled {
			cmds = append(cmds, Checkout(lc.id, lc.prefetch))
		}
	}
	clear(r.held) // what they held was returned: later settlements of it are ignored
	r.mu.Unlock()
	for _, c := range cmds {
		r.enqueue(c)
	}
}

// enqueue hands a command to the proposer; it blocks when cmdQueueMax are waiting.
func (r *Replica) enqueue(c Command) {
	select {
	case r.cmds <- proposal{c: c}:
	case <-r.stop:
	}
}

// proposal is a command for the proposer; one with a reply is proposed once (proposeOnce),
// in order with the others, and answered.
type proposal struct {
	c     Command
	reply chan<- proposed
}

type proposed struct {
	v   any
	err error
}

// call proposes c once, after the commands enqueued before it (a channel's settlements
// before its basic.get), and returns its result.
func (r *Replica) call(c Command) (any, error) {
	reply := make(chan proposed, 1)
	select {
	case r.cmds <- proposal{c: c, reply: reply}:
	case <-r.stop:
		return nil, cluster.ErrClosed
	}
	select {
	case p := <-reply:
		return p.v, p.err
	case <-r.stop:
		return nil, cluster.ErrClosed
	}
}

func (r *Replica) proposer() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case p := <-r.cmds:
			if p.reply != nil {
				v, err := r.proposeOnce(p.c)
				p.reply <- proposed{v, err}
				continue
			}
			r.proposeRetrying(p.c)
		}
	}
}

// proposeRetrying proposes an idempotent command until it commits (or the replica stops).
func (r *Replica) proposeRetrying(c Command) {
	data := c.Encode()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
		_, err := r.g.Load().Propose(ctx, data)
		cancel()
		if err == nil || errors.Is(err, cluster.ErrClosed) {
			return
		}
		r.log.Debug("retrying quorum queue command", "queue", r.name, "err", err)
		select {
		case <-r.stop:
			return
		case <-time.After(retryPause):
		}
	}
}

// Publish proposes an enqueue; the Waiter returns once it is committed and applied here.
func (r *Replica) Publish(m *queue.Message) (queue.Waiter, error) {
	ttl := int64(-1)
	if m.HasExpiration && m.ExpirationMs >= 0 {
		ttl = m.ExpirationMs
	}
	data := Enqueue(m.Exchange, m.RoutingKey, m.Properties, m.Body).WithClock(time.Now().UnixMilli(), ttl).Encode()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), publishDeadline)
		defer cancel()
		v, err := r.g.Load().Propose(ctx, data)
		for errors.Is(err, cluster.ErrNoLeader) { // not proposed: safe to retry
			select {
			case <-ctx.Done():
			case <-r.stop:
			case <-time.After(retryPause):
				v, err = r.g.Load().Propose(ctx, data)
				continue
			}
			break
		}
		if err == nil {
			if res, ok := v.(EnqueueResult); ok && !res.Accepted {
				err = fmt.Errorf("cannot publish to queue %q: %w", r.name, queue.ErrRejected)
			}
		}
		done <- err
	}()
	return queue.NewReplicaWaiter(func(ctx context.Context) error {
		select {
		case err := <-done:
			done <- err // a later Wait gets the same answer
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}), nil
}

// bootPrefix starts the keys of this run's consumers.
func (r *Replica) bootPrefix() string { return fmt.Sprintf("%x/", r.boot) }

// Consume proposes a checkout for a new local consumer.
func (r *Replica) Consume(q *queue.Queue, spec queue.ConsumerSpec) {
	r.mu.Lock()
	r.seq++
	lc := &localConsumer{id: ConsumerID{Node: r.self, Key: fmt.Sprintf("%s%d/%s", r.bootPrefix(), r.seq, spec.Tag)},
		tag: spec.Tag, owner: spec.Consumer, q: q, noAck: spec.NoAck}
	if !spec.NoAck && spec.Prefetch > 0 {
		lc.prefetch = uint32(spec.Prefetch)
	}
	r.consumers[lc.id.Key] = lc
	r.mu.Unlock()
	r.enqueue(Checkout(lc.id, lc.prefetch).At(time.Now().UnixMilli()))
}

// Cancel proposes that a local consumer gets nothing more; what it holds stays its own
// until settled (its channel's acks, or requeues when the channel closes).
func (r *Replica) Cancel(tag string, owner queue.Consumer) {
	r.mu.Lock()
	var id ConsumerID
	for _, lc := range r.consumers {
		if lc.tag == tag && lc.owner == owner && !lc.cancelled {
			lc.cancelled = true
			id = lc.id
			r.forgetIfIdleLocked(lc)
		}
	}
	r.mu.Unlock()
	if id.Key != "" {
		r.enqueue(Cancel(id).At(time.Now().UnixMilli()))
	}
}

// forgetIfIdleLocked drops a cancelled consumer that holds nothing.
func (r *Replica) forgetIfIdleLocked(lc *localConsumer) {
	if !lc.cancelled {
		return
	}
	for _, k := range r.held {
		if k == lc.id.Key {
			return
		}
	}
	delete(r.consumers, lc.id.Key)
}

// Settle proposes acks, returns or discards of delivered messages, per consumer.
func (r *Replica) Settle(mode queue.SettleMode, ids []uint64) {
	r.mu.Lock()
	byKey := map[string][]uint64{}
	var order []string
	for _, id := range ids {
		k, ok := r.held[id]
		if !ok {
			continue
		}
		delete(r.held, id)
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], id)
	}
	var cmds []Command
	for _, k := range order {
		lc := r.consumers[k]
		if lc == nil {
			continue
		}
		switch mode {
		case queue.SettleAck:
			cmds = append(cmds, Settle(lc.id, byKey[k]...))
		case queue.SettleRequeue:
			cmds = append(cmds, Return(lc.id, byKey[k]...))
		case queue.SettleDrop:
			cmds = append(cmds, Discard(lc.id, byKey[k]...))
		}
		r.forgetIfIdleLocked(lc)
	}
	r.mu.Unlock()
	for _, c := range cmds {
		r.enqueue(c)
	}
	r.Kick() // the consumer has room again
}

// proposeOnce proposes a command that is not idempotent: retried only while it was not
// proposed (no leader), until publishDeadline.
func (r *Replica) proposeOnce(c Command) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), publishDeadline)
	defer cancel()
	data := c.Encode()
	for {
		v, err := r.g.Load().Propose(ctx, data)
		if !errors.Is(err, cluster.ErrNoLeader) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-r.stop:
			return nil, err
		case <-time.After(retryPause):
		}
	}
}

// Purge removes the queue's ready messages through the group (queue.purge) and returns how
// many it removed.
func (r *Replica) Purge() (int, error) {
	v, err := r.call(Purge())
	if err != nil {
		return 0, fmt.Errorf("cannot purge queue %q: %w", r.name, err)
	}
	n, _ := v.(int)
	return n, nil
}

// Get checks out one message for basic.get through the group, to a transient consumer of
// this node: the delivery is settled (Settle) by its id like a consumer's. ok is false when
// the queue had no ready message.
func (r *Replica) Get(q *queue.Queue, noAck bool) (d queue.Delivery, remaining int, ok bool, err error) {
	r.mu.Lock()
	r.seq++
	id := ConsumerID{Node: r.self, Key: fmt.Sprintf("%s%d/get", r.bootPrefix(), r.seq)}
	// registered before the proposal: the apply may hand nothing to it (it takes no
	// deliveries) but Settle finds it by key
	lc := &localConsumer{id: id, q: q, cancelled: true, noAck: noAck}
	r.consumers[id.Key] = lc
	r.mu.Unlock()
	v, err := r.call(Get(id, noAck).At(time.Now().UnixMilli()))
	res, _ := v.(GetResult)
	if err != nil || res.Message == nil {
		r.mu.Lock()
		delete(r.consumers, id.Key)
		r.mu.Unlock()
		if err != nil {
			if !noAck {
				r.enqueue(Down(id)) // it may have committed: what it took returns
			}
			return d, 0, false, fmt.Errorf("cannot get from queue %q: %w", r.name, err)
		}
		return d, res.Remaining, false, nil
	}
	m := res.Message
	r.mu.Lock()
	if noAck {
		delete(r.consumers, id.Key)
	} else {
		r.held[m.ID] = id.Key
	}
	r.mu.Unlock()
	return queue.Delivery{Queue: q, ID: m.ID, Redelivered: res.Redelivered, DeliveryCount: int(m.DeliveryCount),
		Message: &queue.Message{Exchange: m.Exchange, RoutingKey: m.RoutingKey,
			Properties: m.Properties, Body: m.Body, Persistent: true}}, res.Remaining, true, nil
}

// Counts are the state machine's: ready, checked out, consumers (of every node).
func (r *Replica) Counts() (ready, unacked, consumers int) { return r.sm.Counts() }

// Kick asks the kicker to retry refused deliveries.
func (r *Replica) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Replica) kicker() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-time.After(200 * time.Millisecond): // a consumer's room may come from elsewhere
		}
		r.mu.Lock()
		ds := r.pending
		r.pending = nil
		r.mu.Unlock()
		for i, d := range ds {
			if !r.hand(d) {
				r.mu.Lock()
				r.pending = append(ds[i:len(ds):len(ds)], r.pending...)
				r.mu.Unlock()
				break
			}
		}
	}
}

// Deliver is the state machine's delivery to a consumer of this node (Effects), on the
// group's apply goroutine.
func (r *Replica) Deliver(d Delivery) {
	r.mu.Lock()
	lc := r.consumers[d.Consumer.Key]
	if lc == nil {
		// A consumer of a previous run of this node (replayed: NodeDown(self), proposed
		// first, returns what it held), or one gone meanwhile: give back what it holds, once.
		send := strings.HasPrefix(d.Consumer.Key, r.bootPrefix()) && !r.downSent[d.Consumer.Key]
		if send {
			r.downSent[d.Consumer.Key] = true
		}
		r.mu.Unlock()
		if send {
			r.enqueue(Down(d.Consumer).At(time.Now().UnixMilli()))
		}
		return
	}
	r.held[d.Message.ID] = lc.id.Key
	queued := len(r.pending) > 0
	if queued {
		r.pending = append(r.pending, d)
	}
	r.mu.Unlock()
	if !queued && !r.hand(d) {
		r.mu.Lock()
		r.pending = append(r.pending, d)
		r.mu.Unlock()
	}
}

// hand offers d to its consumer; false if it has no room now. A consumer cancelled
// meanwhile returns it.
func (r *Replica) hand(d Delivery) bool {
	r.mu.Lock()
	lc := r.consumers[d.Consumer.Key]
	r.mu.Unlock()
	if lc == nil || lc.cancelled {
		r.Settle(queue.SettleRequeue, []uint64{d.Message.ID})
		return true
	}
	qd := queue.Delivery{Queue: lc.q, ID: d.Message.ID, Redelivered: d.Redelivered, ConsumerTag: lc.tag,
		DeliveryCount: int(d.Message.DeliveryCount),
		Message: &queue.Message{Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey,
			Properties: d.Message.Properties, Body: d.Message.Body, Persistent: true}}
	if !lc.owner.TryDeliver(qd) {
		return false
	}
	if lc.noAck {
		r.Settle(queue.SettleAck, []uint64{d.Message.ID})
	}
	return true
}

// DeadLetter is the state machine's dead-lettering (Effects): performed by the leader only.
func (r *Replica) DeadLetter(m *Message, reason string) {
	g := r.g.Load()
	if r.deadLetter == nil || g == nil || g.Leader() != r.self {
		return
	}
	r.deadLetter([]queue.DeadLetter{{Reason: reason, Queue: r.name, Msg: &queue.Message{
		Exchange: m.Exchange, RoutingKey: m.RoutingKey, Properties: m.Properties, Body: m.Body, Persistent: true}}})
}

// Leader is the node leading the queue's group (0: none known).
func (r *Replica) Leader() uint64 {
	if g := r.g.Load(); g != nil {
		return g.Leader()
	}
	return 0
}
