package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/yardmq/yard/internal/atomicfile"
)

// The join handshake. Raft assumes a voter never forgets what it acknowledged (entries and
// votes); a member restarted with an empty data directory has forgotten both, and its vote
// could elect a leader that lacks committed entries. An empty directory is also how every
// member of a new cluster starts, so a host that starts without Raft state asks its peers
// before any of its groups votes or campaigns:
//
//   - A directory gets a random id when a host first starts on it empty, recorded in its
//     member file (Config.Dir/member) before anything else is written: whatever a host
//     acknowledges from then on stays in that directory; emptied, it gets a new id.
//   - A host whose member file says "joining" (undecided) sends each peer an ask (its
//     directory id) every tick until that peer answered; a peer answers with its state, and
//     an undecided peer also counts the asker as empty.
//   - A peer that holds the cluster's state answers "formed": the asker is a member that
//     lost its data (a rejoiner). Its groups neither vote nor campaign until each has heard a
//     leader and its log holds that leader's commit index and an entry of the leader's term
//     (rejoin.go); meanwhile it asks its peers every election timeout to wake the groups they
//     lead (a quiesced leader would not send it anything) and those it led (their quiesced
//     followers would not elect another leader if it came back before they noticed it
//     gone). Once all its groups caught up it records itself as formed.
//   - Once a majority of the members (itself included) reported empty, the host forms a new
//     cluster: it records that, with the directory ids it counted (the formation), then its
//     groups vote. It answers "new" to a member whose directory id is in its formation (it
//     decides alike: its directory held nothing when it was counted, and holds all it
//     acknowledged since) and "formed" to anyone else, in particular to a member counted
//     under another directory id (emptied since: it may have acknowledged entries).
//
// A directory with Raft state and no member file was written by an earlier yard: formed.
//
// If a majority of the members lost their data at once, what only they held is lost, as with
// Raft: if they reach each other before any member holding state, they form a new cluster;
// if a holder is reachable, the groups it still leads bring them back, and the others stay
// without a leader (they do not vote until they caught up with one). A member that never
// held the cluster's state (one that has been cut off since the cluster's first start)
// counts as empty, like a wiped one.

// Member file states.
const (
	memberFileName = "member"
	memberJoining  = "joining"
	memberFormed   = "formed"
)

// memberFile is the content of Config.Dir/member (JSON).
type memberFile struct {
	State string `json:"state"`
	Dir   uint64 `json:"dir"` // this directory's id
	// Formation: this host formed a new cluster counting these members' directories empty.
	Formation map[uint64]uint64 `json:"formation,omitempty"`
}

// Join phases of a host.
const (
	phaseFormed    = iota // its groups vote freely
	phaseUndecided        // started empty: asking its peers
	phaseRejoining        // a peer holds the cluster's state: its groups catch up first
)

// States on the wire.
const (
	joinEmpty  = 0 // undecided
	joinNew    = 1 // formed a new cluster counting the asker's directory
	joinFormed = 2 // holds the cluster's state (or knows it exists)
)

// Join frame ops.
const (
	joinAsk    = 1 // directory id, state: please answer
	joinAnswer = 2 // directory id, state
	joinWake   = 3 // group ids: wake those you lead
)

// unknownTarget marks a group of a host that started empty: it does not vote or campaign
// until it heard a leader (Group.recovering).
const unknownTarget = math.MaxUint64

// joiner runs a host's join handshake.
type joiner struct {
	h     *Host
	quora int // members needed for a majority

	mu      sync.Mutex
	m       memberFile
	empties map[uint64]uint64 // undecided: members that reported empty -> directory id
	ticks   int               // since the host opened
}

// readMember reads the member file, or writes the one of an empty directory ("joining",
// with a new directory id) before anything else of the host is written.
func readMember(dir string, hasState bool) (memberFile, error) {
	path := filepath.Join(dir, memberFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		m := memberFile{State: memberJoining, Dir: newDirID()}
		if hasState { // written by an earlier yard
			m.State = memberFormed
		}
		return m, writeMember(dir, m)
	}
	if err != nil {
		return memberFile{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	var m memberFile
	if err := json.Unmarshal(b, &m); err != nil || m.Dir == 0 || (m.State != memberJoining && m.State != memberFormed) {
		return memberFile{}, fmt.Errorf("cannot open raft host: %s is damaged: %q", path, b)
	}
	return m, nil
}

func newDirID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

func writeMember(dir string, m memberFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create raft directory: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode the member file: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, memberFileName), append(b, '\n'), 0o644)
}

func newJoiner(h *Host, m memberFile) *joiner {
	return &joiner{h: h, m: m, quora: len(h.cfg.Peers)/2 + 1, empties: make(map[uint64]uint64)}
}

// phase is the host's join phase.
func (h *Host) phase() int { return int(h.joinPhase.Load()) }

// start decides at once when this host alone is a majority (a single-member cluster).
func (j *joiner) start() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.h.phase() == phaseUndecided {
		j.h.log.Info("cluster: this node starts without raft state; asking its peers whether the cluster exists before it votes", "directory", j.m.Dir)
		j.maybeFormLocked()
		j.askLocked()
	}
}

// record notes a peer's reported state.
func (j *joiner) recordLocked(from, dir uint64, state byte) {
	if j.h.phase() != phaseUndecided {
		return
	}
	if state == joinFormed {
		j.h.log.Warn("cluster: a peer holds the cluster's state: this node lost its data and rejoins; its groups vote once they caught up with their leaders", "peer", from)
		j.h.joinPhase.Store(phaseRejoining)
		j.wakeLocked()
		return
	}
	j.empties[from] = dir
	j.maybeFormLocked()
}

// maybeFormLocked forms a new cluster once a majority reported empty: the member file first,
// then the groups may vote.
func (j *joiner) maybeFormLocked() {
	if len(j.empties)+1 < j.quora {
		return
	}
	m := memberFile{State: memberFormed, Dir: j.m.Dir, Formation: map[uint64]uint64{j.h.id: j.m.Dir}}
	for id, dir := range j.empties {
		m.Formation[id] = dir
	}
	if err := writeMember(j.h.cfg.Dir, m); err != nil {
		j.h.log.Error("cluster: cannot record that this node formed the cluster; retrying", "error", err)
		return
	}
	j.m = m
	j.h.log.Info("cluster: a majority of the members started empty: a new cluster", "members", len(m.Formation))
	h := j.h
	h.mu.Lock()
	h.joinPhase.Store(phaseFormed)
	for _, g := range h.groups {
		g.recovering.CompareAndSwap(unknownTarget, 0)
	}
	h.mu.Unlock()
}

// answerLocked is this host's state as told to member from, on directory dir.
func (j *joiner) answerLocked(from, dir uint64) byte {
	switch j.h.phase() {
	case phaseUndecided:
		return joinEmpty
	case phaseFormed:
		if d, ok := j.m.Formation[from]; ok && d == dir {
			return joinNew
		}
	}
	return joinFormed
}

// askLocked asks every peer that has not answered yet.
func (j *joiner) askLocked() {
	for id := range j.h.tr.peers {
		if _, ok := j.empties[id]; !ok {
			j.h.tr.sendFrame(id, appendJoinState(nil, joinAsk, j.m.Dir, joinEmpty))
		}
	}
}

// wakeLocked asks every peer to wake the groups it leads among this host's groups still
// waiting for a leader.
func (j *joiner) wakeLocked() {
	h := j.h
	per := make(map[uint64][]uint64)
	h.mu.Lock()
	for id, g := range h.groups {
		if g.recovering.Load() == unknownTarget {
			for _, v := range g.voters {
				if v != h.id {
					per[v] = append(per[v], id)
				}
			}
		}
	}
	h.mu.Unlock()
	for to, groups := range per {
		for len(groups) > 0 {
			n := min(len(groups), (frameBytesMax-64)/8)
			h.tr.sendFrame(to, appendJoinWake(nil, groups[:n]))
			groups = groups[n:]
		}
	}
}

// tick runs on every tick of the host: asks again, wakes, and ends a rejoin once every group
// caught up.
func (j *joiner) tick() {
	h := j.h
	if h.phase() == phaseFormed {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ticks++
	switch h.phase() {
	case phaseFormed:
		return
	case phaseUndecided:
		j.maybeFormLocked()
		if h.phase() == phaseUndecided {
			j.askLocked()
		}
	case phaseRejoining:
		if j.ticks >= h.cfg.ElectionTicks && j.caughtUp() {
			m := memberFile{State: memberFormed, Dir: j.m.Dir}
			if err := writeMember(h.cfg.Dir, m); err != nil {
				h.log.Error("cluster: cannot record that this node rejoined; retrying", "error", err)
				return
			}
			j.m = m
			h.log.Warn("cluster: every group caught up after this node lost its data: it rejoined")
			h.mu.Lock()
			h.joinPhase.Store(phaseFormed)
			h.mu.Unlock()
			return
		}
	}
	if j.ticks%h.cfg.ElectionTicks == 0 {
		j.wakeLocked()
	}
}

// caughtUp says whether this host has groups and none still waits to catch up.
func (j *joiner) caughtUp() bool {
	h := j.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.groups) == 0 {
		return false
	}
	for _, g := range h.groups {
		if g.recovering.Load() != 0 {
			return false
		}
	}
	return true
}

// deliver handles a peer's join frame.
func (j *joiner) deliver(from uint64, body []byte) error {
	op, dir, state, groups, err := decodeJoin(body)
	if err != nil {
		return err
	}
	switch op {
	case joinWake:
		// The sender lost its state: the groups this node leads must reach it, and those it
		// led (before it restarted; it may have come back before its peers noticed its
		// absence) need a new leader, which their followers elect once ticking.
		for _, id := range groups {
			if g := j.h.Group(id); g != nil {
				if l := g.leader.Load(); l == j.h.id || l == from || l == 0 {
					j.h.schedule(g, true)
				}
			}
		}
	case joinAsk, joinAnswer:
		j.mu.Lock()
		j.recordLocked(from, dir, state)
		var answer []byte
		if op == joinAsk {
			answer = appendJoinState(nil, joinAnswer, j.m.Dir, j.answerLocked(from, dir))
		}
		j.mu.Unlock()
		if answer != nil {
			j.h.tr.sendFrame(from, answer)
		}
	}
	return nil
}

// The join frame's body: uint8 op, then for joinAsk and joinAnswer uint64 directory id and
// uint8 state; for joinWake uint32 n and n uint64 group ids.
func appendJoinState(dst []byte, op byte, dir uint64, state byte) []byte {
	return appendFrame(dst, frameJoin, func(b []byte) []byte {
		b = append(b, op)
		b = binary.BigEndian.AppendUint64(b, dir)
		return append(b, state)
	})
}

func appendJoinWake(dst []byte, groups []uint64) []byte {
	return appendFrame(dst, frameJoin, func(b []byte) []byte {
		b = append(b, joinWake)
		b = binary.BigEndian.AppendUint32(b, uint32(len(groups)))
		for _, g := range groups {
			b = binary.BigEndian.AppendUint64(b, g)
		}
		return b
	})
}

func decodeJoin(body []byte) (op byte, dir uint64, state byte, groups []uint64, err error) {
	if len(body) < 1 {
		return 0, 0, 0, nil, fmt.Errorf("%w: empty join frame", errBadFrame)
	}
	op, body = body[0], body[1:]
	switch op {
	case joinAsk, joinAnswer:
		if len(body) != 9 || body[8] > joinFormed {
			return 0, 0, 0, nil, fmt.Errorf("%w: join state of %d bytes", errBadFrame, len(body))
		}
		return op, binary.BigEndian.Uint64(body), body[8], nil, nil
	case joinWake:
		if len(body) < 4 || uint64(len(body)-4) != 8*uint64(binary.BigEndian.Uint32(body)) {
			return 0, 0, 0, nil, fmt.Errorf("%w: join wake of %d bytes", errBadFrame, len(body))
		}
		body = body[4:]
		groups = make([]uint64, len(body)/8)
		for i := range groups {
			groups[i] = binary.BigEndian.Uint64(body[8*i:])
		}
		return op, 0, 0, groups, nil
	}
	return 0, 0, 0, nil, fmt.Errorf("%w: join op %d", errBadFrame, op)
}
