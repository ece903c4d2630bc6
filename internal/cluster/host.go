package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/tlsconf"
)

// ErrStorage fails the proposals of a host whose storage refused a write (a full disk):
// their outcome is unknown (they may still commit). The host retries the write with backoff
// and serves again once it succeeds; meanwhile it neither proposes, votes nor acknowledges.
var ErrStorage = errors.New("raft host's storage refused a write (a full disk?); retrying")

// Retry delays of a host whose storage refused a write.
const (
	storageRetryMin = 50 * time.Millisecond
	storageRetryMax = 2 * time.Second
)

// isNoSpace says whether err is a storage failure that passes once space is freed.
func isNoSpace(err error) bool { return log.IsNoSpace(err) }

// Config configures a Host. Zero durations and counts take the defaults named below.
type Config struct {
	NodeID uint64
	// Dir holds the WAL (dir/wal) and the snapshots (dir/snap).
	Dir string
	// Listener accepts the peers' connections; the host closes it.
	Listener net.Listener
	// Peers names every member, this node included: node id -> host:port.
	Peers map[uint64]string

	TickInterval    time.Duration // default 50ms
	ElectionTicks   int           // default 10: a follower campaigns after 10-20 silent ticks
	HeartbeatTicks  int           // default 1
	SnapshotEntries uint64        // default 10,000 applied entries between snapshots
	CatchUpEntries  uint64        // default 5,000 entries kept in memory after a snapshot
	// RetainEntries bounds how far back a ReferenceStateMachine's leader keeps entries for
	// its slowest voter: default 50,000 behind the applied index.
	RetainEntries uint64
	// The same three bounds in bytes of entry data, so that a group of large entries (a
	// partition's produce batches) does not hold gigabytes in memory before its count is
	// reached: a snapshot once SnapshotBytes were applied since the last (default 16 MiB),
	// at most CatchUpBytes kept after it (default 4 MiB), at most RetainBytes kept for a
	// slow voter (default 256 MiB; a follower further behind is sent the snapshot, which a
	// partition restores by range fetch).
	SnapshotBytes   uint64
	CatchUpBytes    uint64
	RetainBytes     uint64
	WALSegmentBytes int64 // default 64 MiB
	Workers         int   // default GOMAXPROCS: groups prepared/finished in parallel
	Logger          *slog.Logger
	// FS writes the WAL's files (nil: the real file system; tests inject a full disk).
	FS log.FS
	// TLS, if set, secures the peer connections with mutual TLS (tls.go): its certificate
	// is this node's, its ClientCAs the cluster CA. Nil: plaintext.
	TLS *tlsconf.Store
}

// Raft limits per group.
const (
	maxSizePerMsg      = 1 << 20  // bytes of entries in one MsgApp
	maxInflightMsgs    = 256      // MsgApps in flight to one follower
	maxUncommittedSize = 64 << 20 // bytes proposed but not committed; more are dropped
)

func (c *Config) setDefaults() {
	if c.TickInterval <= 0 {
		c.TickInterval = 50 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10_000
	}
	if c.CatchUpEntries == 0 {
		c.CatchUpEntries = 5_000
	}
	if c.RetainEntries == 0 {
		c.RetainEntries = 50_000
	}
	if c.RetainEntries < c.CatchUpEntries {
		c.RetainEntries = c.CatchUpEntries
	}
	if c.SnapshotBytes == 0 {
		c.SnapshotBytes = 16 << 20
	}
	if c.CatchUpBytes == 0 {
		c.CatchUpBytes = 4 << 20
	}
	if c.RetainBytes == 0 {
		c.RetainBytes = 256 << 20
	}
	if c.RetainBytes < c.CatchUpBytes {
		c.RetainBytes = c.CatchUpBytes
	}
	if c.WALSegmentBytes <= 0 {
		c.WALSegmentBytes = 64 << 20
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Host runs every Raft group of one node (see the package comment for the model).
type Host struct {
	cfg Config
	id  uint64
	log *slog.Logger
	tr  *transport
	rng *ranges // range fetches (rangefetch.go)
	wal *wal    // the loop goroutine's only
	seq atomic.Uint64

	mu        sync.Mutex // guards everything below
	groups    map[uint64]*Group
	recovered map[uint64]*recoveredGroup
	snaps     map[uint64]*pb.Snapshot
	work      map[uint64]*Group // groups with something to do
	active    map[uint64]*Group // groups that are ticked
	removing  []removal         // groups removed since the last round (RemoveGroup)
	err       error             // the failure that stopped the host
	closed    bool

	kick   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	ticks  atomic.Uint64 // tick rounds done, for tests
	rounds atomic.Uint64 // processing rounds done, for tests
	walBuf []byte
	alive  map[uint64]bool // peer liveness as last seen by the ticker

	// pending is the round the loop could not complete because the storage refused a write
	// (the loop goroutine's only); while it is set the host is stalled: see stall.
	pending  *pendingRound
	stalled  atomic.Bool
	stallErr atomic.Pointer[error]

	// joinPhase is the join handshake's phase (join.go), written under mu: while it is not
	// phaseFormed, new groups wait for a leader before they vote.
	joinPhase atomic.Int32
	join      *joiner
}

// pendingRound is a processing round stopped by a storage failure, resumed where it
// stopped: its Ready batches not yet persisted (persisted false: nothing of the round was
// sent or applied), or persisted and finished but with committed entries a state machine
// could not apply yet (kept in their group's backlog), or a WAL segment roll to redo.
type pendingRound struct {
	batch     []*Group
	rds       []*raft.Ready
	persisted bool
}

// Open recovers the host's WAL and snapshots from cfg.Dir and starts its transport, ticker
// and processing loop. Groups are then added with CreateGroup.
func Open(cfg Config) (*Host, error) {
	cfg.setDefaults()
	if cfg.NodeID == 0 || cfg.Peers[cfg.NodeID] == "" {
		return nil, fmt.Errorf("cannot open raft host: node %d is not among the peers", cfg.NodeID)
	}
	if err := checkTLSStore(cfg.TLS); err != nil {
		return nil, err
	}
	snaps, err := readSnapshotFiles(cfg.Dir)
	if err != nil {
		return nil, err
	}
	w, rec, err := openWAL(cfg.Dir+"/wal", cfg.WALSegmentBytes, cfg.Logger, cfg.FS)
	if err != nil {
		return nil, err
	}
	member, err := readMember(cfg.Dir, len(rec) > 0 || len(snaps) > 0)
	if err != nil {
		return nil, errors.Join(err, w.close())
	}
	h := &Host{cfg: cfg, id: cfg.NodeID, log: cfg.Logger, wal: w,
		groups: make(map[uint64]*Group), recovered: rec, snaps: snaps,
		work: make(map[uint64]*Group), active: make(map[uint64]*Group),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), alive: make(map[uint64]bool), rng: newRanges()}
	if member.State == memberJoining {
		h.joinPhase.Store(phaseUndecided)
	}
	h.join = newJoiner(h, member)
	h.tr = newTransport(cfg.NodeID, cfg.Listener, cfg.Peers, cfg.TickInterval, cfg.Logger)
	h.tr.sec.store = cfg.TLS
	h.tr.deliver = h.deliver
	h.tr.deliverJoin = h.join.deliver
	h.tr.deliverRange = h.deliverRange
	h.tr.dropped = func(group, to uint64, m *pb.Message) {
		h.report(group, report{to: to, snapshot: m.GetType() == pb.MsgSnap, failed: true})
	}
	h.tr.sentOK = func(group, to uint64, m *pb.Message) {
		h.report(group, report{to: to, snapshot: true})
	}
	h.tr.start()
	h.join.start()
	h.wg.Add(2)
	go h.loop()
	go h.ticker()
	h.startRanges()
	return h, nil
}

// ID is this node's id.
func (h *Host) ID() uint64 { return h.id }

// PeerAlive reports whether node id was heard from within an election timeout as of the
// last tick (always true for this node): for state machines whose leader must act when a
// member's node dies (a quorum queue returns the messages its consumers held).
func (h *Host) PeerAlive(id uint64) bool {
	if id == h.id {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.alive[id]
}

// Close stops the host; every waiting proposal fails with ErrClosed.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.tr.stop()
	close(h.stop)
	h.wg.Wait()
	h.mu.Lock()
	groups := slices.Collect(maps.Values(h.groups))
	h.mu.Unlock()
	for _, g := range groups {
		g.failAll(ErrClosed)
	}
	return h.wal.close()
}

// Err is the failure that stopped the host, if any (a failed WAL write or fsync).
func (h *Host) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// Group returns group id, or nil.
func (h *Host) Group(id uint64) *Group {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.groups[id]
}

// removal is a group removed by RemoveGroup, to be recorded by the loop.
type removal struct {
	id uint64
	g  *Group // nil if it was never created in this run
}

// RemoveGroup stops group id on this node and forgets it for good: its proposals fail with
// ErrClosed, messages for it are dropped, and the WAL records its removal (fsynced) so that
// a restart does not recover it and its entries stop holding WAL segments. Every member
// removes it when it applies the same change (the partitions of a deleted topic). It may be
// called from a state machine's Apply: it takes effect at the end of the current round. The
// id must never be used again (group ids are derived from random topic ids).
func (h *Host) RemoveGroup(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[id]
	_, rec := h.recovered[id]
	_, snap := h.snaps[id]
	if g == nil && !rec && !snap {
		return
	}
	delete(h.groups, id)
	delete(h.work, id)
	delete(h.active, id)
	delete(h.recovered, id)
	delete(h.snaps, id)
	h.removing = append(h.removing, removal{id, g})
	h.kickLocked()
}

// finishRemovals records the groups removed since the last call, in the WAL (fsynced) and by
// deleting their snapshot files, and fails what their proposers still wait for. Called by
// the loop between rounds, so no round writes a removed group's entries after its record.
func (h *Host) finishRemovals() error {
	h.mu.Lock()
	rs := h.removing
	h.removing = nil
	h.mu.Unlock()
	if len(rs) == 0 {
		return nil
	}
	var buf []byte
	for _, r := range rs {
		buf = appendRemovedRecord(buf, r.id)
	}
	if err := h.wal.write(buf, nil, true); err != nil {
		h.mu.Lock()
		h.removing = append(rs, h.removing...) // retried with the next round
		h.mu.Unlock()
		return err
	}
	for _, r := range rs {
		if err := os.Remove(snapPath(h.cfg.Dir, r.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			h.log.Warn("cluster: cannot remove the snapshot of a removed group", "group", r.id, "err", err)
		}
		if r.g != nil {
			r.g.failAll(ErrClosed)
		}
	}
	return nil
}

// CreateGroup starts group id with state machine sm. voters are its members when the group
// is new (every member must name the same ones); a group recovered from disk keeps its own.
func (h *Host) CreateGroup(id uint64, sm StateMachine, voters []uint64) (*Group, error) {
	return h.CreateGroupFrom(id, sm, voters, Bootstrap{})
}

// CreateGroupFrom is CreateGroup with a bootstrap other than the default for a new group
// (adopt.go); a group recovered from disk ignores it.
func (h *Host) CreateGroupFrom(id uint64, sm StateMachine, voters []uint64, boot Bootstrap) (*Group, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.groups[id] != nil {
		return nil, fmt.Errorf("cannot create raft group %d: %w", id, ErrGroupExists)
	}
	g := &Group{id: id, h: h, sm: sm, storage: raft.NewMemoryStorage(), waits: make(map[uint64]chan result)}
	// On a host that has not formed or rejoined yet, a group votes once it caught up with a
	// leader (join.go); not the adopting member's group, which holds the group's first state
	// and alone can be elected (adopt.go): a member that lost that state has no adoption to
	// make any more.
	if h.phase() != phaseFormed && len(boot.Data) == 0 {
		g.recovering.Store(unknownTarget)
	}
	if err := g.recover(h.snaps[id], h.recovered[id], voters, boot); err != nil {
		return nil, err
	}
	g.voters = slices.Clone(g.confState.GetVoters())
	if len(g.voters) == 0 { // joining an adopted group: its static membership is voters
		g.voters = slices.Clone(voters)
		slices.Sort(g.voters)
	}
	if d, ok := sm.(DurableStateMachine); ok {
		if a := d.AppliedIndex(); a > g.applied {
			if a > g.hs.GetCommit() {
				return nil, fmt.Errorf("cannot create raft group %d: its state machine applied index %d, beyond the commit index %d", id, a, g.hs.GetCommit())
			}
			g.applied = a
		}
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: h.id, ElectionTick: h.cfg.ElectionTicks, HeartbeatTick: h.cfg.HeartbeatTicks,
		Storage: g.storage, Applied: g.applied,
		MaxSizePerMsg: maxSizePerMsg, MaxInflightMsgs: maxInflightMsgs,
		MaxUncommittedEntriesSize: maxUncommittedSize,
		CheckQuorum:               true, PreVote: true,
		Logger: &raftLogger{log: h.log.With("group", id)},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create raft group %d: %w", id, err)
	}
	g.rn = rn
	delete(h.recovered, id)
	delete(h.snaps, id)
	h.groups[id] = g
	g.active = true
	h.active[id] = g
	h.work[id] = g
	h.kickLocked()
	return g, nil
}

// recover loads the group's snapshot (or the bootstrap state: index 1, term 1, voters) and
// the WAL's entries and HardState into its storage and state machine.
func (g *Group) recover(snap *pb.Snapshot, rec *recoveredGroup, voters []uint64, boot Bootstrap) error {
	if snap == nil {
		if len(voters) == 0 {
			return fmt.Errorf("cannot create raft group %d: no voters", g.id)
		}
		snap = pb.EnsureSnapshot(&pb.Snapshot{Data: boot.Data, Metadata: &pb.SnapshotMetadata{
			Index: new(uint64(1)), Term: new(uint64(1)),
			ConfState: &pb.ConfState{Voters: slices.Clone(voters)}}})
		if boot.Join {
			// No configuration and no entry (index 0): this member neither campaigns nor
			// counts itself until the adopting member's snapshot reaches it.
			snap = pb.EnsureSnapshot(&pb.Snapshot{Metadata: &pb.SnapshotMetadata{
				Index: new(uint64(0)), Term: new(uint64(0)), ConfState: &pb.ConfState{}}})
		}
	} else if err := g.sm.Restore(snap.Data); err != nil {
		return fmt.Errorf("cannot restore snapshot of group %d: %w", g.id, err)
	}
	if snap.GetMetadata().GetIndex() > 0 {
		if err := g.storage.ApplySnapshot(snap); err != nil {
			return fmt.Errorf("cannot load snapshot of group %d: %w", g.id, err)
		}
	}
	md := snap.GetMetadata()
	g.confState, g.snapIndex, g.applied = md.GetConfState(), md.GetIndex(), md.GetIndex()
	g.compacted.Store(md.GetIndex())
	hs := &pb.HardState{Term: new(md.GetTerm()), Vote: new(uint64(0)), Commit: new(md.GetIndex())}
	if rec != nil {
		ents := rec.ents
		for len(ents) > 0 && ents[0].GetIndex() <= md.GetIndex() {
			ents = ents[1:]
		}
		if len(ents) > 0 && ents[0].GetIndex() != md.GetIndex()+1 {
			return fmt.Errorf("%w: group %d resumes at index %d after a snapshot at %d", ErrCorruptWAL, g.id, ents[0].GetIndex(), md.GetIndex())
		}
		if err := g.storage.Append(ents); err != nil {
			return fmt.Errorf("cannot load entries of group %d: %w", g.id, err)
		}
		if rec.hs != nil && rec.hs.GetTerm() >= hs.GetTerm() {
			hs = rec.hs
		}
	}
	last, _ := g.storage.LastIndex()
	if hs.GetCommit() < md.GetIndex() {
		hs.Commit = new(md.GetIndex()) // the snapshot was written, its HardState not yet
	}
	if hs.GetCommit() > last {
		return fmt.Errorf("%w: group %d committed %d but holds entries up to %d", ErrCorruptWAL, g.id, hs.GetCommit(), last)
	}
	g.hs = hs
	return g.storage.SetHardState(hs)
}

func (h *Host) kickLocked() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// schedule queues g for the next round; wake also resumes ticking a quiesced group.
func (h *Host) schedule(g *Group, wake bool) {
	h.mu.Lock()
	if h.groups[g.id] != g { // removed (RemoveGroup)
		h.mu.Unlock()
		return
	}
	if wake && !g.active {
		g.active = true
		h.active[g.id] = g
	}
	h.work[g.id] = g
	h.kickLocked()
	h.mu.Unlock()
}

// quiesce stops ticking g unless something arrived for it meanwhile (or, for a leader, it
// has a Ready to handle), and reports whether it did.
func (h *Host) quiesce(g *Group) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g.mbMu.Lock()
	busy := len(g.mb.msgs)+len(g.mb.props)+len(g.mb.quiesce) > 0
	g.mbMu.Unlock()
	st := g.rn.BasicStatus()
	leader := st.RaftState == raft.StateLeader
	if busy || !g.active || (leader && g.rn.HasReady()) {
		return false
	}
	if leader {
		for _, v := range g.confState.GetVoters() {
			if v != h.id {
				h.tr.sendQuiesce(g.id, v, st.GetTerm(), st.GetCommit())
			}
		}
	}
	g.active = false
	delete(h.active, g.id)
	return true
}

func (h *Host) report(group uint64, r report) {
	g := h.Group(group)
	if g == nil {
		return
	}
	g.mbMu.Lock()
	g.mb.reports = append(g.mb.reports, r)
	g.mbMu.Unlock()
	h.schedule(g, false)
}

// deliver hands a peer's frame to its groups (called by the transport's readers).
func (h *Host) deliver(from uint64, hbs []heartbeat, msgs []groupMsg) {
	for _, hb := range hbs {
		g := h.Group(hb.group)
		if g == nil {
			continue
		}
		wake := hb.flags&hbResponse == 0
		g.mbMu.Lock()
		switch {
		case hb.flags&hbQuiesce != 0:
			wake = false
			g.mb.quiesce = append(g.mb.quiesce, hb)
			g.mb.qFrom = append(g.mb.qFrom, from)
		case len(g.mb.msgs) >= mailboxMsgsMax:
		case hb.flags&hbResponse != 0:
			g.mb.msgs = append(g.mb.msgs, &pb.Message{Type: pb.MsgHeartbeatResp.Enum(), From: new(from), To: new(h.id), Term: new(hb.term)})
		default:
			g.mb.msgs = append(g.mb.msgs, &pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(h.id), Term: new(hb.term), Commit: new(hb.commit)})
		}
		g.mbMu.Unlock()
		h.schedule(g, wake)
	}
	for _, gm := range msgs {
		g := h.Group(gm.group)
		if g == nil || gm.msg.GetFrom() != from || gm.msg.GetTo() != h.id {
			continue
		}
		g.mbMu.Lock()
		full := len(g.mb.msgs) >= mailboxMsgsMax
		if !full {
			g.mb.msgs = append(g.mb.msgs, gm.msg)
		}
		g.mbMu.Unlock()
		if !full {
			h.schedule(g, gm.msg.GetType() != pb.MsgHeartbeatResp)
		}
	}
}

// ticker ticks the active groups and follows the peers' liveness: a peer that falls silent
// wakes the quiesced groups it leads (their followers must be able to elect a new leader);
// a peer that comes back wakes the groups this node leads (so it hears from them again).
func (h *Host) ticker() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.TickInterval)
	defer t.Stop()
	livenessTimeout := time.Duration(h.cfg.ElectionTicks) * h.cfg.TickInterval
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.mu.Lock()
			// Ticks do not pile up: a host too slow to process a tick before the next one
			// slows Raft's clock rather than letting elections fire in a burst.
			for id, g := range h.active {
				g.mbMu.Lock()
				g.mb.ticks = 1
				g.mbMu.Unlock()
				h.work[id] = g
			}
			if len(h.active) > 0 {
				h.kickLocked()
			}
			for pid := range h.tr.peers {
				alive := h.tr.alive(pid, livenessTimeout, now)
				if alive != h.alive[pid] {
					h.alive[pid] = alive
					h.wakeLocked(pid, alive)
				}
			}
			h.mu.Unlock()
			h.join.tick()
			h.ticks.Add(1)
		}
	}
}

// wakeLocked resumes ticking the groups led by peer, if it died (their followers must elect
// another leader), and those led by this node (if peer died, a lost quorum must make it
// step down, as CheckQuorum does; if it is back, it must hear from them again).
func (h *Host) wakeLocked(peer uint64, alive bool) {
	for id, g := range h.groups {
		if g.active {
			continue
		}
		l := g.leader.Load()
		if l == h.id || (!alive && l == peer) {
			g.active = true
			h.active[id] = g
			h.work[id] = g
		}
	}
	h.kickLocked()
}

// loop runs processing rounds: prepare every group with work (in parallel), persist all
// their Ready batches with one WAL write and at most one fsync, then finish them (in
// parallel): send, apply, advance. A round stopped by a full disk stalls the host: it is
// retried with backoff, and no other round runs until it completes.
func (h *Host) loop() {
	defer h.wg.Done()
	backoff := storageRetryMin
	for {
		if h.pending != nil {
			select {
			case <-h.stop:
				return
			case <-time.After(backoff):
			}
			if err := h.complete(); err != nil {
				if !isNoSpace(err) {
					h.fail(err)
					return
				}
				backoff = min(2*backoff, storageRetryMax)
				continue
			}
			h.unstall()
			backoff = storageRetryMin
			continue
		}
		select {
		case <-h.stop:
			return
		case <-h.kick:
		}
		h.mu.Lock()
		batch := slices.Collect(maps.Values(h.work))
		clear(h.work)
		h.mu.Unlock()
		var err error
		if len(batch) > 0 {
			err = h.round(batch)
		} else if err = h.finishRemovals(); err == nil {
			err = h.wal.gc(h.compactedIndex)
		}
		if err != nil {
			if isNoSpace(err) {
				if h.pending != nil {
					h.stall(err)
				}
				continue // a removal not recorded yet waits for the next round
			}
			h.fail(err)
			return
		}
		if len(batch) > 0 {
			h.rounds.Add(1)
		}
	}
}

func (h *Host) round(batch []*Group) error {
	rds := make([]*raft.Ready, len(batch))
	h.parallel(len(batch), func(i int) error {
		rds[i] = batch[i].prepare()
		return nil
	})
	h.pending = &pendingRound{batch: batch, rds: rds}
	return h.complete()
}

// complete runs the pending round from where it stopped: persist, finish, apply the
// backlogs, roll the WAL. It clears h.pending once everything succeeded; an error leaves it
// for a retry (a full disk) or stops the host (anything else).
func (h *Host) complete() error {
	p := h.pending
	if !p.persisted {
		if err := h.persist(p.batch, p.rds); err != nil {
			return err
		}
		p.persisted = true
		if err := h.parallel(len(p.batch), func(i int) error {
			if p.rds[i] == nil {
				return nil
			}
			if err := p.batch[i].finishReady(p.rds[i]); err != nil && !isNoSpace(err) {
				return err
			}
			if p.batch[i].rn.HasReady() {
				h.schedule(p.batch[i], false)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for _, g := range p.batch {
		if len(g.backlog) > 0 {
			if err := g.applyBacklog(); err != nil {
				return err
			}
		}
	}
	if h.wal.full() {
		var states []byte
		h.mu.Lock()
		for id, g := range h.groups {
			states = appendHardStateRecord(states, id, g.hs)
		}
		for id, r := range h.recovered {
			if r.hs != nil {
				states = appendHardStateRecord(states, id, r.hs)
			}
		}
		h.mu.Unlock()
		if err := h.wal.roll(states); err != nil {
			return err
		}
	}
	if err := h.finishRemovals(); err != nil {
		return err
	}
	h.pending = nil
	return h.wal.gc(h.compactedIndex)
}

// stall stops the host's rounds after its storage refused a write (a full disk) until the
// pending round completes: the waiting proposals fail with ErrStorage and new ones are
// refused, and the transport stops pinging, so that to its peers the node looks down (they
// elect other leaders) rather than alive and unable to lead. Nothing of the stalled round
// was sent: an entry whose write failed is neither acknowledged nor voted on.
func (h *Host) stall(err error) {
	h.log.Error("cluster: storage refused a write; raft host stalled, retrying", "error", err)
	h.stallErr.Store(&err)
	h.stalled.Store(true)
	h.tr.silent.Store(true)
	h.mu.Lock()
	groups := slices.Collect(maps.Values(h.groups))
	h.mu.Unlock()
	for _, g := range groups {
		g.failAll(fmt.Errorf("cannot replicate: %w: %w", ErrStorage, err))
	}
}

func (h *Host) unstall() {
	h.log.Warn("cluster: storage accepts writes again; raft host resumed")
	h.tr.silent.Store(false)
	h.stalled.Store(false)
	h.mu.Lock()
	h.kickLocked()
	h.mu.Unlock()
}

// Stalled reports whether the host's rounds are stopped by a storage failure that it
// retries (a full disk), and that failure.
func (h *Host) Stalled() (bool, error) {
	if !h.stalled.Load() {
		return false, nil
	}
	if p := h.stallErr.Load(); p != nil {
		return true, *p
	}
	return true, nil
}

// compactedIndex is the highest index of group that the WAL no longer needs.
func (h *Host) compactedIndex(group uint64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g := h.groups[group]; g != nil {
		return g.compacted.Load()
	}
	if s := h.snaps[group]; s != nil {
		return s.GetMetadata().GetIndex()
	}
	if _, ok := h.recovered[group]; ok {
		return 0 // not created yet in this run
	}
	return math.MaxUint64 // removed: nothing of it is needed
}

// persist writes received snapshots, then every entry and HardState of the round in one
// WAL write, fsynced once if any Ready needs it.
func (h *Host) persist(batch []*Group, rds []*raft.Ready) error {
	buf := slices.Grow(h.walBuf[:0], roundRecordsBytes(rds)) // one allocation, not a growth per record
	maxIndex := make(map[uint64]uint64)
	sync := false
	for i, rd := range rds {
		if rd == nil {
			continue
		}
		g := batch[i]
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := writeSnapshotFile(h.cfg.Dir, g.id, rd.Snapshot); err != nil {
				return err
			}
		}
		if n := len(rd.Entries); n > 0 {
			for ents := rd.Entries; len(ents) > 0; {
				k := entriesForRecord(ents)
				buf = appendEntriesRecord(buf, g.id, ents[:k])
				ents = ents[k:]
			}
			maxIndex[g.id] = rd.Entries[n-1].GetIndex()
		}
		if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
			buf = appendHardStateRecord(buf, g.id, rd.HardState)
		}
		sync = sync || rd.MustSync
	}
	if len(buf) > 0 || sync {
		if err := h.wal.write(buf, maxIndex, sync); err != nil {
			return err
		}
	}
	if cap(buf) <= 2*batchBytesMax {
		h.walBuf = buf
	}
	return nil
}

// roundRecordsBytes is (about) the size of the WAL records of a round's Ready batches.
func roundRecordsBytes(rds []*raft.Ready) int {
	n := 0
	for _, rd := range rds {
		if rd == nil {
			continue
		}
		n += 2 * (walRecordHeader + 1 + 8 + 4 + 8*3) // an entries record's header, a hard state record
		for _, e := range rd.Entries {
			n += entryHeaderBytes + len(e.Data)
		}
	}
	return n
}

// parallel runs f(0..n-1) on up to Workers goroutines and returns the first error.
func (h *Host) parallel(n int, f func(i int) error) error {
	if n == 1 {
		return f(0)
	}
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	for range min(n, h.cfg.Workers) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				if err := f(i); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// fail stops the host after a storage failure: continuing could acknowledge what is lost.
func (h *Host) fail(err error) {
	h.log.Error("cluster: raft host stopped", "error", err)
	h.mu.Lock()
	h.err = err
	groups := slices.Collect(maps.Values(h.groups))
	h.mu.Unlock()
	for _, g := range groups {
		g.failAll(fmt.Errorf("cannot replicate: %w", errors.Join(ErrClosed, err)))
	}
}

// raftLogger sends etcd raft's log lines to slog; its routine Info lines become Debug.
type raftLogger struct{ log *slog.Logger }

func (l *raftLogger) Debug(v ...any)              { l.log.Debug(fmt.Sprint(v...)) }
func (l *raftLogger) Debugf(f string, v ...any)   { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *raftLogger) Info(v ...any)               { l.log.Debug(fmt.Sprint(v...)) }
func (l *raftLogger) Infof(f string, v ...any)    { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l *raftLogger) Warning(v ...any)            { l.log.Warn(fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(f string, v ...any) { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l *raftLogger) Error(v ...any)              { l.log.Error(fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(f string, v ...any)   { l.log.Error(fmt.Sprintf(f, v...)) }
func (l *raftLogger) Fatal(v ...any)              { panic("BUG: raft: " + fmt.Sprint(v...)) }
func (l *raftLogger) Fatalf(f string, v ...any)   { panic("BUG: raft: " + fmt.Sprintf(f, v...)) }
func (l *raftLogger) Panic(v ...any)              { panic("BUG: raft: " + fmt.Sprint(v...)) }
func (l *raftLogger) Panicf(f string, v ...any)   { panic("BUG: raft: " + fmt.Sprintf(f, v...)) }
