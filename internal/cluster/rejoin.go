package cluster

import (
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// A member that lost its data (restarted with an empty data directory) breaks Raft's
// assumption that acknowledged entries stay on disk, in two ways that this file handles:
//
//   - Its group's leader remembers how far it had replicated (its match index) and never
//     sends it anything below that: etcd raft takes the member's rejections as stale. The
//     leader notices a rejection whose hint (the member's last index) is below its match
//     index, which only a lost log explains, and resets the member's progress: it applies,
//     on itself only, a configuration change that removes the member and one that adds it
//     back (etcd raft then starts its progress over at 0); the configuration ends as it was,
//     so they are not replicated and need no quorum (a replicated removal needed one: with
//     two members wiped at once, neither could acknowledge it and the group was stuck). The
//     member is then sent what it lacks, entries or a snapshot (restored through the range
//     fetch for a partition), and counts as in sync once it replicates again.
//   - It could vote for a candidate that misses entries it had acknowledged. A host that
//     starts with an empty directory knows it before any group votes: its join handshake
//     (join.go) creates its groups recovering until they heard a leader. A member that lost
//     entries otherwise learns it from its leader's heartbeat (a commit index beyond its log:
//     the leader sends min(match, commit)). Either way it recovers: until its log reaches the
//     highest commit index a leader told it and holds an entry of that leader's term, it
//     neither votes nor campaigns in that group (vote requests are dropped, the group is not
//     ticked), and on a heartbeat beyond its log it tells the leader its real last index (a
//     rejection) so that the leader starts over.

// addBackRetry is how long a leader waits for a proposal adding a voter back to apply before
// proposing it again (the proposal may have been dropped).
const addBackRetry = time.Second

// noteHeartbeat runs on a follower for a heartbeat from its leader with commit beyond its log
// (last): the member lost data it had acknowledged. It enters recovery and answers the leader
// with a rejection naming its last index.
func (g *Group) noteLostLog(m *pb.Message, last uint64) {
	if g.recovering.Load() == 0 {
		g.h.log.Warn("cluster: this member lost entries it had acknowledged (an emptied data directory?); recovering from the leader without voting", "group", g.id, "leader commit", m.GetCommit(), "last", last)
	}
	g.learnTarget(m.GetCommit())
	g.h.tr.send(g.id, &pb.Message{Type: pb.MsgAppResp.Enum(), From: new(g.h.id), To: new(m.GetFrom()),
		Term: new(m.GetTerm()), Index: new(m.GetCommit()), Reject: new(true), RejectHint: new(last)})
}

// heardLeader runs for a leader's message (append, heartbeat, snapshot) with the commit index
// it carries: a member that waits to catch up (recovering set) waits for that index too.
func (g *Group) heardLeader(commit uint64) {
	if g.recovering.Load() != 0 {
		g.learnTarget(commit)
	}
}

// learnTarget raises the index this member must hold before it votes again; the first one
// replaces unknownTarget (a host that started empty, join.go).
func (g *Group) learnTarget(commit uint64) {
	for {
		old := g.recovering.Load()
		nw := max(commit, 1)
		if old != unknownTarget {
			nw = max(nw, old)
		}
		if old == nw || g.recovering.CompareAndSwap(old, nw) {
			return
		}
	}
}

// checkRecovered ends the recovery once the log reaches the highest commit index a leader
// reported and holds an entry of the current leader's term: by Raft's log matching the log is
// then the leader's up to there, which holds every entry committed before its term (leader
// completeness) and, up to its commit index, in it. A commit index alone would not do: a new
// leader's can lag behind what its predecessor committed.
func (g *Group) checkRecovered() {
	r := g.recovering.Load()
	if r == 0 || r == unknownTarget {
		return
	}
	last, _ := g.storage.LastIndex()
	if last < r {
		return
	}
	st := g.rn.BasicStatus()
	if t, err := g.storage.Term(last); st.Lead == 0 || err != nil || t != st.GetTerm() {
		return
	}
	if g.recovering.CompareAndSwap(r, 0) {
		g.h.log.Info("cluster: member caught up with its group's leader; it votes again", "group", g.id, "index", last)
	}
}

// noteRejection runs on the leader for a follower's rejection: a hint below the follower's
// match index means it lost its log, and its progress is reset (see the file comment).
func (g *Group) noteRejection(m *pb.Message) {
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || m.GetTerm() != st.GetTerm() {
		return
	}
	from := m.GetFrom()
	lost := false
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == from && m.GetRejectHint() < pr.Match {
			lost = true
		}
	})
	cs := g.confState
	if !lost || !slices.Contains(cs.GetVoters(), from) || len(cs.GetVotersOutgoing()) > 0 {
		return // a joint configuration would refuse a simple change (none is used)
	}
	// Between the two changes the leader counts a quorum of the other voters, as many
	// acknowledgements as a quorum of all when they are an odd number: nothing commits then
	// that was not committed (a lost member's match index counts acknowledgements it did
	// make). With an even number it would take one fewer, so the reset waits until everything
	// on the leader is committed (with two voters: until nothing waits for the lost member).
	last, _ := g.storage.LastIndex()
	if len(cs.GetVoters())%2 == 0 && last != st.GetCommit() {
		return
	}
	for _, t := range []pb.ConfChangeType{pb.ConfChangeRemoveNode, pb.ConfChangeAddNode} {
		g.confState = g.rn.ApplyConfChange(&pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: t.Enum(), NodeId: new(from)}}})
	}
	g.h.log.Warn("cluster: a member lost entries it had acknowledged; its progress starts over", "group", g.id, "member", from, "its last index", m.GetRejectHint())
}

// maybeAddBack runs on the leader after each Ready: a voter of the group's static membership
// missing from its configuration (removed by an earlier yard, which reset a member's
// progress by removing it and adding it back through the log) is added back, at most once
// per addBackRetry while the change is pending.
func (g *Group) maybeAddBack() {
	if len(g.confState.GetVoters()) >= len(g.voters) || g.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	for _, v := range g.voters {
		if slices.Contains(g.confState.GetVoters(), v) || time.Since(g.addAt) < addBackRetry {
			continue
		}
		cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: pb.ConfChangeAddNode.Enum(), NodeId: new(v)}}}
		if err := g.rn.ProposeConfChange(cc); err != nil {
			g.h.log.Warn("cluster: cannot propose adding a member back", "group", g.id, "member", v, "error", err)
			return
		}
		g.addAt = time.Now()
		g.h.log.Warn("cluster: adding a member back", "group", g.id, "member", v)
		return
	}
}
