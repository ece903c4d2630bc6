package cluster

import (
	"encoding/binary"
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
//   - Every host runs under a random incarnation number, new at each start. A host that
//     started empty (undecided) sends each peer an ask (its incarnation, "empty") every tick
//     until that peer answered; a peer answers with its own state, and an undecided peer
//     also counts the asker as empty.
//   - A peer that holds the cluster's state answers "formed": the asker is a member that
//     lost its data (a rejoiner). Its groups neither vote nor campaign until each has heard
//     a leader and its log holds that leader's commit index and an entry of the leader's
//     term (rejoin.go); meanwhile it asks the peers every election timeout to wake the
//     groups they lead (a quiesced leader would not send it anything). Once all its groups
//     caught up it records itself as formed.
//   - Once a majority of the members (itself included) reported empty, the host formed a new
//     cluster: it records that durably (Config.Dir/member), then its groups vote. It answers
//     "new" to the incarnations it counted (they decide alike) and "formed" to anyone else,
//     in particular to a later incarnation of a member it counted (that member restarted:
//     it may have acknowledged entries since).
//
// The member file says "joining" from the first start of an empty directory until the host
// formed or rejoined (a host that crashes meanwhile asks again, whatever its WAL holds by
// then), "formed" afterwards. A directory with Raft state and no member file was written by
// an earlier yard: formed.
//
// If a majority of the members lost their data at once, what only they held is lost, as with
// Raft: if they reach each other before any member holding state, they form a new cluster;
// if one holder is reachable they wait for the groups it cannot lead alone. A member that
// decided "formed" and then crashes before the others decided answers "formed" to them from
// then on: they wait as rejoiners for leaders that cannot be elected (nothing was stored
// yet: empty every data directory and start again).

// Member file contents.
const (
	memberFileName = "member"
	memberJoining  = "joining\n"
	memberFormed   = "formed\n"
)

// Join phases of a host.
const (
	phaseFormed    = iota // its groups vote freely
	phaseUndecided        // started empty: asking its peers
	phaseRejoining        // a peer holds the cluster's state: its groups catch up first
)

// States on the wire.
const (
	joinEmpty  = 0 // undecided: holds nothing
	joinNew    = 1 // formed a new cluster in this run, counting the asker's incarnation
	joinFormed = 2 // holds the cluster's state (or knows it exists)
)

// Join frame ops.
const (
	joinAsk    = 1 // incarnation, state: please answer
	joinAnswer = 2 // incarnation, state
	joinWake   = 3 // group ids: wake those you lead
)

// unknownTarget marks a group of a host that started empty: it does not vote or campaign
// until it heard a leader (Group.recovering).
const unknownTarget = math.MaxUint64

// joiner runs a host's join handshake.
type joiner struct {
	h     *Host
	inc   uint64
	quora int // members needed for a majority

	mu      sync.Mutex
	empties map[uint64]uint64 // undecided: members that reported empty -> incarnation
	// formation: the members (incarnations) counted when this host formed a new cluster in
	// this run; they are answered "new".
	formation map[uint64]uint64
	ticks     int // since the host opened
}

// readMember returns the host's join phase at start and writes the member file of an empty
// directory ("joining"), before anything else of the host is written.
func readMember(dir string, hasState bool) (int, error) {
	path := filepath.Join(dir, memberFileName)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && string(b) == memberFormed:
		return phaseFormed, nil
	case err == nil && string(b) == memberJoining:
		return phaseUndecided, nil
	case err == nil:
		return 0, fmt.Errorf("cannot open raft host: unknown content of %s: %q", path, b)
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("cannot read %s: %w", path, err)
	case hasState: // written by an earlier yard
		return phaseFormed, writeMember(dir, memberFormed)
	default:
		return phaseUndecided, writeMember(dir, memberJoining)
	}
}

func writeMember(dir, state string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create raft directory: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, memberFileName), []byte(state), 0o644)
}

func newJoiner(h *Host) *joiner {
	return &joiner{h: h, inc: rand.Uint64() | 1, quora: len(h.cfg.Peers)/2 + 1,
		empties: make(map[uint64]uint64), formation: make(map[uint64]uint64)}
}

// phase is the host's join phase.
func (h *Host) phase() int { return int(h.joinPhase.Load()) }

// start decides at once when this host alone is a majority (a single-member cluster).
func (j *joiner) start() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.h.phase() == phaseUndecided {
		j.h.log.Info("cluster: this node starts without raft state; asking its peers whether the cluster exists before it votes", "incarnation", j.inc)
		j.maybeFormLocked()
		j.askLocked()
	}
}

// record notes a peer's reported state.
func (j *joiner) recordLocked(from, inc uint64, state byte) {
	if j.h.phase() != phaseUndecided {
		return
	}
	if state == joinFormed {
		j.h.log.Warn("cluster: a peer holds the cluster's state: this node lost its data and rejoins; its groups vote once they caught up with their leaders", "peer", from)
		j.h.joinPhase.Store(phaseRejoining)
		j.wakeLocked()
		return
	}
	j.empties[from] = inc
	j.maybeFormLocked()
}

// maybeFormLocked forms a new cluster once a majority reported empty: the member file first,
// then the groups may vote.
func (j *joiner) maybeFormLocked() {
	if len(j.empties)+1 < j.quora {
		return
	}
	if err := writeMember(j.h.cfg.Dir, memberFormed); err != nil {
		j.h.log.Error("cluster: cannot record that this node formed the cluster; retrying", "error", err)
		return
	}
	for id, inc := range j.empties {
		j.formation[id] = inc
	}
	j.h.log.Info("cluster: a majority of the members started empty: a new cluster", "members", len(j.empties)+1)
	h := j.h
	h.mu.Lock()
	h.joinPhase.Store(phaseFormed)
	for _, g := range h.groups {
		g.recovering.CompareAndSwap(unknownTarget, 0)
	}
	h.mu.Unlock()
}

// answerLocked is this host's state as told to incarnation inc of member from.
func (j *joiner) answerLocked(from, inc uint64) byte {
	switch j.h.phase() {
	case phaseUndecided:
		return joinEmpty
	case phaseFormed:
		if j.formation[from] == inc {
			return joinNew
		}
	}
	return joinFormed
}

// askLocked asks every peer that has not answered yet.
func (j *joiner) askLocked() {
	for id := range j.h.tr.peers {
		if _, ok := j.empties[id]; !ok {
			j.h.tr.sendFrame(id, appendJoinState(nil, joinAsk, j.inc, joinEmpty))
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
			if err := writeMember(h.cfg.Dir, memberFormed); err != nil {
				h.log.Error("cluster: cannot record that this node rejoined; retrying", "error", err)
				return
			}
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
	op, inc, state, groups, err := decodeJoin(body)
	if err != nil {
		return err
	}
	switch op {
	case joinWake:
		for _, id := range groups {
			if g := j.h.Group(id); g != nil && g.leader.Load() == j.h.id {
				j.h.schedule(g, true)
			}
		}
	case joinAsk, joinAnswer:
		j.mu.Lock()
		j.recordLocked(from, inc, state)
		var answer []byte
		if op == joinAsk {
			answer = appendJoinState(nil, joinAnswer, j.inc, j.answerLocked(from, inc))
		}
		j.mu.Unlock()
		if answer != nil {
			j.h.tr.sendFrame(from, answer)
		}
	}
	return nil
}

// The join frame's body: uint8 op, then for joinAsk and joinAnswer uint64 incarnation and
// uint8 state; for joinWake uint32 n and n uint64 group ids.
func appendJoinState(dst []byte, op byte, inc uint64, state byte) []byte {
	return appendFrame(dst, frameJoin, func(b []byte) []byte {
		b = append(b, op)
		b = binary.BigEndian.AppendUint64(b, inc)
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

func decodeJoin(body []byte) (op byte, inc uint64, state byte, groups []uint64, err error) {
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
