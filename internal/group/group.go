package group

import (
	"context"
	"time"
)

// group is one consumer group. Every field below ops/done is owned by the goroutine running
// run(); other goroutines reach it only through submit.
type group struct {
	c    *Coordinator
	id   string
	ops  chan func()   // bounded by Config.GroupQueueLen
	done chan struct{} // closed when run returns
	// unload is closed when this node stops coordinating the group (placement.go).
	unload chan struct{}

	dead       bool
	state      State
	typ        string // TypeClassic, or TypeConsumer once a KIP-848 member joined
	emptySince time.Time

	// Classic protocol.
	protocolType      string
	protocol          string
	generation        int32
	leader            string
	members           map[string]*member
	seq               int64             // join order, for choosing a leader
	static            map[string]string // group.instance.id -> member id
	pending           map[string]time.Time
	rebalanceDeadline time.Time
	initialJoin       bool      // the first rebalance from Empty, delayed
	initialCap        time.Time // the initial delay never extends past this
	joinedDuringDelay bool
	syncDeadline      time.Time
	pendingSync       map[string]bool

	// KIP-848 consumer protocol (consumer.go).
	cg *consumerGroup
}

func newGroup(c *Coordinator, id string) *group {
	return &group{
		c: c, id: id,
		ops:  make(chan func(), c.cfg.GroupQueueLen),
		done: make(chan struct{}), unload: make(chan struct{}),
		typ: TypeClassic, state: StateEmpty, emptySince: c.now(),
		members: map[string]*member{}, static: map[string]string{}, pending: map[string]time.Time{},
		pendingSync: map[string]bool{},
	}
}

// submit queues f for the group's goroutine; it blocks while the group's queue is full
// (push back on that group's clients only).
func (g *group) submit(ctx context.Context, f func()) error {
	select {
	case g.ops <- f:
		return nil
	case <-g.done:
		return ErrCoordinatorNotAvailable
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *group) run() {
	defer close(g.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for !g.dead {
		g.armTimer(t)
		select {
		case f := <-g.ops:
			f()
		case <-t.C:
			g.onTimer()
		case <-g.c.stop:
			g.failAll(ErrCoordinatorNotAvailable)
			return
		case <-g.unload: // already out of the coordinator's map
			g.failAll(ErrNotCoordinator)
			return
		}
	}
	g.c.forget(g)
	g.failAll(ErrCoordinatorNotAvailable)
	// Requests queued before the group died still get an answer.
	for {
		select {
		case f := <-g.ops:
			f()
		default:
			return
		}
	}
}

// armTimer sets t to fire at the earliest deadline of the group.
func (g *group) armTimer(t *time.Timer) {
	next, ok := g.nextDeadline()
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	if ok {
		t.Reset(max(next.Sub(g.c.now()), 0))
	}
}

func (g *group) nextDeadline() (time.Time, bool) {
	var next time.Time
	consider := func(d time.Time) {
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	switch g.state {
	case StatePreparingRebalance:
		consider(g.rebalanceDeadline)
	case StateCompletingRebalance:
		consider(g.syncDeadline)
	}
	for _, m := range g.members {
		if m.joinCh == nil && m.syncCh == nil {
			consider(m.deadline)
		}
	}
	for _, d := range g.pending {
		consider(d)
	}
	if g.cg != nil {
		for _, m := range g.cg.members {
			consider(m.deadline)
			if len(m.revoking) > 0 {
				consider(m.revokeDeadline)
			}
		}
	}
	return next, !next.IsZero()
}

func (g *group) onTimer() {
	now := g.c.now()
	for id, d := range g.pending {
		if !now.Before(d) {
			delete(g.pending, id)
		}
	}
	if g.state == StatePreparingRebalance && !now.Before(g.rebalanceDeadline) {
		g.onRebalanceDeadline(now)
	}
	if g.state == StateCompletingRebalance && !now.Before(g.syncDeadline) {
		g.onSyncDeadline()
	}
	g.expireSessions(now)
	if g.cg != nil {
		g.cg.expire(g, now)
	}
	g.maybeCompleteJoin()
}

// failAll answers every waiting request (shutdown or deletion).
func (g *group) failAll(err error) {
	for _, m := range g.members {
		if m.joinCh != nil {
			m.joinCh <- JoinResult{Err: err, MemberID: m.id, Generation: -1}
			m.joinCh = nil
		}
		if m.syncCh != nil {
			m.syncCh <- SyncResult{Err: err}
			m.syncCh = nil
		}
	}
}

// isEmpty reports whether the group has no members of either protocol.
func (g *group) isEmpty() bool {
	return len(g.members) == 0 && (g.cg == nil || len(g.cg.members) == 0)
}

// setEmpty moves the group to Empty and notes when (offsets expire relative to it).
func (g *group) setEmpty() {
	g.state = StateEmpty
	g.emptySince = g.c.now()
}
