package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Errors of proposals.
var (
	ErrNoLeader = errors.New("raft group has no leader")
	// ErrLeaderChanged: the leader changed while a proposal waited; it may or may not have
	// been applied (as a timeout): a retry must expect either.
	ErrLeaderChanged = errors.New("raft group's leader changed; the proposal's outcome is unknown")
	ErrClosed        = errors.New("raft host closed")
	ErrBusy          = errors.New("raft group has too many proposals waiting")
	ErrGroupExists   = errors.New("raft group already exists")
)

// Entry is one committed command handed to a StateMachine.
type Entry struct {
	Index, Term uint64
	Data        []byte
}

// StateMachine is what a group replicates. Apply is called in log order with every committed
// command, on every member, from one goroutine at a time; its result and error are the
// proposer's and must be deterministic (the same on every member). After a restart the host
// restores the last snapshot and applies every committed entry after it again (after
// AppliedIndex, for a state machine that has one), so Apply must treat an index it has
// already applied as a no-op if its state outlives the process.
//
// An Apply error that says the disk is full (ENOSPC, EDQUOT) is not a result: the entry was
// not applied (Apply must leave the state as it was) and the host applies it again, and the
// entries after it, once space is freed; meanwhile its rounds are stalled (Host.Stalled).
type StateMachine interface {
	Apply(e Entry) (any, error)
	// Snapshot returns the state after the last applied entry, or ErrNoSnapshot.
	Snapshot() ([]byte, error)
	// Restore replaces the state with a snapshot's.
	Restore(data []byte) error
}

// DurableStateMachine is a StateMachine whose state survives restarts on its own: the host
// applies only the committed entries after AppliedIndex (read once, when the group is created).
type DurableStateMachine interface {
	StateMachine
	AppliedIndex() uint64
}

// ReferenceStateMachine is a state machine whose snapshot refers to state each member keeps
// on its own (a replicated partition's snapshot names the end of the log it already holds)
// instead of carrying it. A member can only restore such a snapshot if it holds what it
// refers to: CanRestore says so. A snapshot sent by the leader that this member cannot
// restore is ignored (the member stays behind rather than pretend to hold the state) until a
// RangeStateMachine has fetched what it lacks (rangefetch.go), so its group's leader keeps
// the entries back to the slowest voter's match index, up to Config.RetainEntries behind its
// applied index, for followers to catch up from the log, which is cheaper.
type ReferenceStateMachine interface {
	StateMachine
	CanRestore(data []byte) bool
}

// ErrNoSnapshot is a state machine's answer to Snapshot when it takes none: its group keeps
// its whole log (a follower that falls behind the leader's memory cannot catch up).
var ErrNoSnapshot = errors.New("state machine takes no snapshots")

// Proposal payload framing inside a Raft entry: uint8 version (1), uint64 proposing node,
// uint64 proposal sequence (unique on that node), then the command. The proposer learns its
// result when its own node applies the entry, whichever node led when it committed.
const (
	propVersion     = 1
	propHeaderBytes = 17
	mailboxMsgsMax  = 4096 // inbound raft messages waiting for one group; more are dropped
	mailboxPropsMax = 4096 // proposals waiting for one group; more fail with ErrBusy
)

// Group is one Raft group on this host: a RawNode, its storage and its state machine.
// Everything but the mailbox and the published status is touched only by the host's
// round that processes the group, one at a time.
type Group struct {
	id      uint64
	h       *Host
	sm      StateMachine
	storage *raft.MemoryStorage
	rn      *raft.RawNode

	voters    []uint64 // fixed at creation
	confState *pb.ConfState
	hs        *pb.HardState // last persisted, for WAL segment rolls
	snapIndex uint64
	applied   uint64
	snapBytes uint64 // bytes of entry data applied since the last snapshot
	active    bool   // guarded by h.mu: ticked (not quiesced)

	mbMu sync.Mutex // guards mb
	mb   mailbox

	waitMu sync.Mutex // guards waits
	waits  map[uint64]chan result
	noSnap bool // the state machine takes no snapshots
	// recovering: this member lost entries it had acknowledged and catches up to this index
	// before it votes again (rejoin.go).
	// A host that started empty creates its groups with recovering at unknownTarget until it
	// knows whether the cluster is new (join.go); votesRefused counts the vote requests
	// dropped meanwhile (for tests).
	recovering   atomic.Uint64
	votesRefused atomic.Uint64
	addAt        time.Time     // when this leader last proposed adding a voter back (rejoin.go)
	backlog      []*pb.Entry   // committed entries not applied yet: the disk was full
	refused      atomic.Uint64 // index of the last snapshot this member could not restore (logged once)
	// fetching: a goroutine fetches what a snapshot refers to (rangefetch.go).
	fetching    atomic.Bool
	fetched     atomic.Uint64 // range fetches completed, for tests
	fetchFailed atomic.Uint64 // snapshot index of the last failed fetch (logged once)

	leader      atomic.Uint64
	term        atomic.Uint64
	appliedTerm atomic.Uint64            // term of the last entry applied (or of the restored snapshot)
	inSync      atomic.Pointer[[]uint64] // the leader's view, see InSync
	compacted   atomic.Uint64            // entries at or below are in the snapshot file: WAL may drop them
}

type mailbox struct {
	ticks   int
	msgs    []*pb.Message
	quiesce []heartbeat // from the leader, with its id in quiesceFrom
	qFrom   []uint64
	props   [][]byte
	reports []report
}

type report struct {
	to       uint64
	snapshot bool // else unreachable
	failed   bool
}

// ID is the group's id.
func (g *Group) ID() uint64 { return g.id }

// Leader is the node id the group last knew as leader (0: none known).
func (g *Group) Leader() uint64 { return g.leader.Load() }

// Term is the group's current Raft term.
func (g *Group) Term() uint64 { return g.term.Load() }

// LeaderReady says whether this node leads the group and has applied an entry of its own
// term. A new leader holds every committed entry in its Raft log but may not have applied them
// all yet: until it applies the first entry of its term (the empty one Raft appends on
// election), its state machine can be behind what the previous leader acknowledged.
func (g *Group) LeaderReady() bool {
	t := g.term.Load()
	return g.leader.Load() == g.h.id && t != 0 && g.appliedTerm.Load() == t
}

// Voters are the group's voting members, as created (membership is static so far).
func (g *Group) Voters() []uint64 { return slices.Clone(g.voters) }

// InSync are the voters the leader sees replicating actively (itself, and every follower
// heard from within an election timeout whose log it is streaming to): Kafka's ISR. On a
// node that does not lead the group it is every voter, as this node cannot tell.
func (g *Group) InSync() []uint64 {
	if g.leader.Load() == g.h.id {
		if p := g.inSync.Load(); p != nil {
			return slices.Clone(*p)
		}
	}
	return g.Voters()
}

// publishInSync records the leader's view of InSync after a Ready, if it changed.
func (g *Group) publishInSync() {
	var isr []uint64
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ == raft.ProgressTypePeer && (id == g.h.id || (pr.RecentActive && pr.State == tracker.StateReplicate)) {
			isr = append(isr, id)
		}
	})
	slices.Sort(isr)
	if p := g.inSync.Load(); p == nil || !slices.Equal(*p, isr) {
		g.inSync.Store(&isr)
	}
}

type result struct {
	v   any
	err error
}

// Propose replicates cmd and waits until this node has applied it, returning the state
// machine's result. A proposal on a follower is forwarded to the leader. If the leader
// changes meanwhile it fails with ErrLeaderChanged: the command may still commit.
func (g *Group) Propose(ctx context.Context, cmd []byte) (any, error) {
	return g.Start(cmd).Wait(ctx)
}

// Proposal is a command handed to its group (Start) whose result is not known yet.
type Proposal struct {
	g    *Group
	seq  uint64
	done chan result // nil: failed at once (err)
	err  error
}

// Start hands cmd to the group for replication without waiting for it: Wait returns what
// Propose would. The commands Start hands one group are proposed in call order, so a caller
// that starts several in turn (a connection's pipelined produce requests) gets them into the
// leader's log in that order (unless one fails). Every Start must be followed by a Wait (or
// the result is kept until the group closes).
func (g *Group) Start(cmd []byte) *Proposal {
	if stalled, err := g.h.Stalled(); stalled {
		return &Proposal{err: fmt.Errorf("cannot replicate command in group %d: %w: %w", g.id, ErrStorage, err)}
	}
	seq := g.h.seq.Add(1)
	data := make([]byte, propHeaderBytes, propHeaderBytes+len(cmd))
	data[0] = propVersion
	binary.BigEndian.PutUint64(data[1:], g.h.id)
	binary.BigEndian.PutUint64(data[9:], seq)
	data = append(data, cmd...)
	done := make(chan result, 1)
	g.waitMu.Lock()
	if g.waits == nil {
		g.waitMu.Unlock()
		return &Proposal{err: ErrClosed}
	}
	g.waits[seq] = done
	g.waitMu.Unlock()
	g.mbMu.Lock()
	if len(g.mb.props) >= mailboxPropsMax {
		g.mbMu.Unlock()
		g.finish(seq, nil, ErrBusy)
		return &Proposal{err: ErrBusy}
	}
	g.mb.props = append(g.mb.props, data)
	g.mbMu.Unlock()
	g.h.schedule(g, true)
	return &Proposal{g: g, seq: seq, done: done}
}

// Wait waits until this node has applied the proposal and returns the state machine's
// result, or until ctx ends (the command may still commit). Called once.
func (p *Proposal) Wait(ctx context.Context) (any, error) {
	if p.done == nil {
		return nil, p.err
	}
	select {
	case r := <-p.done:
		return r.v, r.err
	default:
	}
	select {
	case r := <-p.done:
		return r.v, r.err
	case <-ctx.Done():
		p.g.waitMu.Lock()
		delete(p.g.waits, p.seq)
		p.g.waitMu.Unlock()
		return nil, fmt.Errorf("cannot replicate command in group %d: %w", p.g.id, ctx.Err())
	}
}

// finish hands a proposal its result, if it is still waited for.
func (g *Group) finish(seq uint64, v any, err error) {
	g.waitMu.Lock()
	done := g.waits[seq]
	delete(g.waits, seq)
	g.waitMu.Unlock()
	if done != nil {
		done <- result{v, err}
	}
}

// failAll fails every waiting proposal; with ErrClosed no proposal is accepted any more.
func (g *Group) failAll(err error) {
	g.waitMu.Lock()
	waits := g.waits
	g.waits = nil
	if !errors.Is(err, ErrClosed) {
		g.waits = make(map[uint64]chan result)
	}
	g.waitMu.Unlock()
	for _, done := range waits {
		done <- result{nil, err}
	}
}

// prepare feeds the mailbox to the RawNode and returns its Ready, if any.
func (g *Group) prepare() *raft.Ready {
	g.mbMu.Lock()
	mb := g.mb
	g.mb = mailbox{}
	g.mbMu.Unlock()
	// An idle leader quiesces instead of ticking (a tick would send heartbeats).
	if mb.ticks > 0 && len(mb.msgs)+len(mb.props)+len(mb.quiesce)+len(mb.reports) == 0 && g.canQuiesce() && g.h.quiesce(g) {
		return nil
	}
	if g.recovering.Load() == 0 { // a member recovering lost data does not campaign (rejoin.go)
		for range mb.ticks {
			g.rn.Tick()
		}
	}
	for _, m := range mb.msgs {
		switch m.GetType() {
		case pb.MsgHeartbeat:
			// A leader sends min(match, commit); a node that lost its disk has a shorter
			// log than its old match, and Raft would panic on the commit index. Clamping
			// keeps the process up; the member recovers (rejoin.go).
			if last, _ := g.storage.LastIndex(); m.GetCommit() > last {
				g.noteLostLog(m, last)
				m.Commit = new(last)
			} else {
				g.heardLeader(m.GetCommit())
			}
		case pb.MsgApp:
			g.heardLeader(m.GetCommit())
		case pb.MsgSnap:
			g.heardLeader(m.GetSnapshot().GetMetadata().GetIndex())
		case pb.MsgVote, pb.MsgPreVote, pb.MsgTimeoutNow:
			if g.recovering.Load() > 0 {
				g.votesRefused.Add(1)
				continue // it cannot tell whether the candidate misses what it lost
			}
		case pb.MsgAppResp:
			if m.GetReject() {
				g.noteRejection(m)
			}
		}
		if m.GetType() == pb.MsgSnap && !g.canRestore(m.GetSnapshot()) {
			g.maybeFetch(m)
			continue
		}
		_ = g.rn.Step(m) // a stale or misdirected message is Raft's to ignore
	}
	for i, q := range mb.quiesce {
		g.stepQuiesce(mb.qFrom[i], q)
	}
	for _, data := range mb.props {
		if err := g.rn.Propose(data); err != nil {
			if errors.Is(err, raft.ErrProposalDropped) {
				err = ErrNoLeader
			} else {
				err = fmt.Errorf("cannot propose in group %d: %w", g.id, err)
			}
			g.finish(binary.BigEndian.Uint64(data[9:]), nil, err)
		}
	}
	for _, r := range mb.reports {
		if r.snapshot {
			st := raft.SnapshotFinish
			if r.failed {
				st = raft.SnapshotFailure
			}
			g.rn.ReportSnapshot(r.to, st)
		} else {
			g.rn.ReportUnreachable(r.to)
		}
	}
	if len(mb.msgs)+mb.ticks > 0 && g.leader.Load() == g.h.id {
		// Responses and CheckQuorum's periodic reset (on ticks) move followers in and out
		// of sync without a Ready.
		g.publishInSync()
	}
	if g.rn.HasReady() {
		rd := g.rn.Ready()
		return &rd
	}
	return nil
}

// canRestore says whether this member can restore snap: always, unless its state machine's
// snapshots hold references to state this member lacks.
func (g *Group) canRestore(snap *pb.Snapshot) bool {
	rsm, ok := g.sm.(ReferenceStateMachine)
	if !ok || rsm.CanRestore(snap.GetData()) {
		return true
	}
	if i := snap.GetMetadata().GetIndex(); g.refused.Swap(i) != i {
		_, fetches := rsm.(RangeStateMachine)
		if fetches {
			g.h.log.Info("cluster: a snapshot refers to state this member lacks; fetching it", "group", g.id, "index", i, "applied", g.applied)
		} else {
			g.h.log.Error("cluster: ignoring a snapshot that refers to state this member lacks; it stays behind", "group", g.id, "index", i, "applied", g.applied)
		}
	}
	return false
}

// stepQuiesce handles a leader's quiesce row: it is a heartbeat (which advances the commit
// index) after which the follower stops ticking if it follows that leader in that term.
func (g *Group) stepQuiesce(from uint64, q heartbeat) {
	last, _ := g.storage.LastIndex()
	if q.commit > last {
		g.noteLostLog(&pb.Message{From: new(from), Term: new(q.term), Commit: new(q.commit)}, last)
	} else {
		g.heardLeader(q.commit)
	}
	_ = g.rn.Step(&pb.Message{Type: pb.MsgHeartbeat.Enum(), From: new(from), To: new(g.h.id),
		Term: new(q.term), Commit: new(min(q.commit, last))})
	st := g.rn.BasicStatus()
	if st.RaftState == raft.StateFollower && st.Lead == from && st.GetTerm() == q.term {
		g.h.quiesce(g)
	}
}

// canQuiesce says whether this leader may stop ticking: every entry is committed, applied
// and on every voter, and no leadership transfer runs.
func (g *Group) canQuiesce() bool {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || st.Applied != st.GetCommit() {
		return false
	}
	ok := true
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != st.GetCommit() {
			ok = false
		}
	})
	return ok
}

// finishReady runs after the round's WAL write: it updates storage, sends messages,
// applies committed entries and advances the RawNode. It reports whether the group has
// more to do.
func (g *Group) finishReady(rd *raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("cannot apply snapshot to group %d: %w", g.id, err)
		}
		if err := g.sm.Restore(rd.Snapshot.Data); err != nil {
			return fmt.Errorf("cannot restore snapshot of group %d: %w", g.id, err)
		}
		md := rd.Snapshot.GetMetadata()
		g.confState = md.GetConfState()
		g.snapIndex, g.applied, g.snapBytes = md.GetIndex(), md.GetIndex(), 0
		g.appliedTerm.Store(md.GetTerm())
		g.compacted.Store(md.GetIndex())
	}
	if err := g.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("cannot append to group %d: %w", g.id, err)
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := g.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("cannot set hard state of group %d: %w", g.id, err)
		}
		g.hs = rd.HardState
	}
	for _, m := range rd.Messages {
		g.h.tr.send(g.id, m)
	}
	// An entry the state machine could not apply (a full disk) stays in the backlog, with
	// the ones after it, and the round completes: Raft's own state moves on as persisted.
	applyErr := g.apply(rd.CommittedEntries)
	if applyErr != nil && !isNoSpace(applyErr) {
		return applyErr
	}
	g.rn.Advance(*rd)
	g.checkRecovered()
	g.maybeAddBack()
	st := g.rn.BasicStatus()
	if old := g.leader.Swap(st.Lead); old != st.Lead && old != 0 {
		// A proposal forwarded to (or appended by) the old leader may be lost without
		// any answer: its waiters learn now rather than at their deadline.
		g.failAll(ErrLeaderChanged)
	}
	g.term.Store(st.GetTerm())
	if st.RaftState == raft.StateLeader && rd.SoftState != nil {
		g.publishInSync() // just elected
	}
	if applyErr != nil {
		return applyErr
	}
	return g.maybeSnapshot()
}

// applyBacklog applies the committed entries a full disk held back, then snapshots if due.
func (g *Group) applyBacklog() error {
	if err := g.apply(nil); err != nil {
		return err
	}
	return g.maybeSnapshot()
}

// apply applies the backlog, then ents. A state machine's no-space error stops it: that
// entry and the rest become the backlog, and the error is returned.
func (g *Group) apply(ents []*pb.Entry) error {
	if len(g.backlog) > 0 {
		ents = append(g.backlog, ents...)
		g.backlog = nil
	}
	for i, e := range ents {
		switch e.GetType() {
		case pb.EntryNormal:
			if len(e.Data) > 0 {
				if err := g.applyCommand(e); err != nil {
					g.backlog = slices.Clone(ents[i:])
					return fmt.Errorf("cannot apply entry %d of group %d: %w", e.GetIndex(), g.id, err)
				}
			}
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := proto.Unmarshal(e.Data, &cc); err != nil {
				return fmt.Errorf("cannot decode conf change in group %d: %w", g.id, err)
			}
			g.confState = g.rn.ApplyConfChange(&cc)
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := proto.Unmarshal(e.Data, &cc); err != nil {
				return fmt.Errorf("cannot decode conf change in group %d: %w", g.id, err)
			}
			g.confState = g.rn.ApplyConfChange(&cc)
		}
		g.applied = e.GetIndex()
		g.snapBytes += uint64(len(e.Data))
		g.appliedTerm.Store(e.GetTerm())
	}
	return nil
}

// applyCommand applies one command and hands its result to its proposer if it waits on
// this node. A no-space error is returned instead: the entry was not applied.
func (g *Group) applyCommand(e *pb.Entry) error {
	d := e.Data
	if len(d) < propHeaderBytes || d[0] != propVersion {
		g.h.log.Error("cluster: skipping an entry of unknown format", "group", g.id, "index", e.GetIndex())
		return nil
	}
	v, err := g.sm.Apply(Entry{Index: e.GetIndex(), Term: e.GetTerm(), Data: d[propHeaderBytes:]})
	if isNoSpace(err) {
		return err
	}
	if binary.BigEndian.Uint64(d[1:]) == g.h.id {
		g.finish(binary.BigEndian.Uint64(d[9:]), v, err)
	}
	return nil
}

// maybeSnapshot takes a snapshot once SnapshotEntries entries or SnapshotBytes bytes were
// applied since the last, writes it, and compacts the in-memory log, keeping CatchUpEntries
// (at most CatchUpBytes) for slow followers.
func (g *Group) maybeSnapshot() error {
	cfg := &g.h.cfg
	if g.noSnap || len(g.backlog) > 0 || (g.applied < g.snapIndex+cfg.SnapshotEntries && g.snapBytes < cfg.SnapshotBytes) {
		return nil
	}
	data, err := g.sm.Snapshot()
	if errors.Is(err, ErrNoSnapshot) {
		g.noSnap = true
		return nil
	}
	if isNoSpace(err) { // a snapshot can wait: taken again after the next entries
		g.h.log.Warn("cluster: cannot take a snapshot on a full disk", "group", g.id, "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot take snapshot of group %d: %w", g.id, err)
	}
	term, err := g.storage.Term(g.applied)
	if err != nil {
		return fmt.Errorf("cannot take snapshot of group %d: %w", g.id, err)
	}
	// The file first, then the in-memory snapshot: a file that cannot be written (a full
	// disk) leaves the group as it was, and the snapshot is taken again later.
	snap := pb.EnsureSnapshot(&pb.Snapshot{Data: data, Metadata: &pb.SnapshotMetadata{Index: new(g.applied), Term: new(term), ConfState: g.confState}})
	if err := writeSnapshotFile(cfg.Dir, g.id, snap); err != nil {
		if isNoSpace(err) {
			g.h.log.Warn("cluster: cannot write a snapshot on a full disk", "group", g.id, "error", err)
			return nil
		}
		return err
	}
	if _, err := g.storage.CreateSnapshot(g.applied, g.confState, data); err != nil {
		return fmt.Errorf("cannot take snapshot of group %d: %w", g.id, err)
	}
	g.snapIndex, g.snapBytes = g.applied, 0
	g.compacted.Store(g.applied)
	if c := g.compactionPoint(); c > 0 {
		if first, _ := g.storage.FirstIndex(); c >= first {
			if err := g.storage.Compact(c); err != nil {
				return fmt.Errorf("cannot compact group %d: %w", g.id, err)
			}
		}
	}
	return nil
}

// compactionPoint is the index up to which the in-memory log may be dropped after a snapshot
// (0: none): CatchUpEntries behind the applied index; for a ReferenceStateMachine's leader,
// no further than the slowest voter's match index, unless that is more than RetainEntries
// behind (a follower that far behind needs the state the snapshot refers to).
func (g *Group) compactionPoint() uint64 {
	cfg := &g.h.cfg
	c := g.keepFrom(cfg.CatchUpEntries, cfg.CatchUpBytes)
	if c == 0 {
		return 0
	}
	if _, ok := g.sm.(ReferenceStateMachine); !ok {
		return c
	}
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return c
	}
	floor := g.keepFrom(cfg.RetainEntries, cfg.RetainBytes)
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ == raft.ProgressTypePeer && id != g.h.id && pr.Match < c {
			c = max(pr.Match, floor)
		}
	})
	return c
}

// keepFrom is the highest index up to which the in-memory log may be dropped so that it keeps
// the last n applied entries, or fewer if those hold more than bytes of data (0: keep all).
// The walk back over the kept entries runs once per snapshot.
func (g *Group) keepFrom(n, bytes uint64) uint64 {
	c := uint64(0)
	if g.applied > n {
		c = g.applied - n
	}
	first, err := g.storage.FirstIndex()
	if err != nil || first > g.applied {
		return c
	}
	ents, err := g.storage.Entries(max(first, c+1), g.applied+1, math.MaxUint64)
	if err != nil {
		return c
	}
	var sum uint64
	for i := len(ents) - 1; i >= 0; i-- {
		if sum += uint64(len(ents[i].Data)); sum > bytes {
			return max(c, ents[i].GetIndex())
		}
	}
	return c
}
