package group

// The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), run on the
// group's goroutine. States as Kafka names them:
//
//	Empty --join--> PreparingRebalance --all joined or rebalance timeout--> CompletingRebalance
//	CompletingRebalance --leader's SyncGroup--> Stable
//	Stable/CompletingRebalance --join of a new or changed member, leave, expiry--> PreparingRebalance
//	PreparingRebalance --nobody rejoined--> Empty
//
// Each completed join bumps the generation. Members that do not rejoin by the rebalance
// deadline are removed; members that stop heartbeating for their session timeout are removed
// and the group rebalances. Static members (group.instance.id) keep their place across
// restarts: a rejoin with a known instance id takes over the old member id, without a
// rebalance when nothing changed, and fences the old one (FENCED_INSTANCE_ID).

import (
	"bytes"
	"time"
)

// member is a classic group member.
type member struct {
	id               string
	instanceID       string
	clientID         string
	clientHost       string
	protocolType     string
	protocols        []Protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	seq              int64
	deadline         time.Time       // session expiry, while not awaiting join or sync
	joinCh           chan JoinResult // set while awaiting the join response
	syncCh           chan SyncResult // set while awaiting the sync response
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func (m *member) sameProtocols(ps []Protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || !bytes.Equal(ps[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *group) join(req JoinRequest, ch chan JoinResult) {
	reply := func(err error) { ch <- JoinResult{Err: err, MemberID: req.MemberID, Generation: -1} }
	if g.cg != nil && len(g.cg.members) > 0 {
		reply(ErrInconsistentProtocol)
		return
	}
	if g.cg != nil { // an emptied KIP-848 group becomes a classic one
		g.cg, g.typ = nil, TypeClassic
	}
	if !g.supportsProtocols(req) {
		reply(ErrInconsistentProtocol)
		return
	}
	if req.MemberID == "" {
		g.joinUnknown(req, ch)
		return
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		g.addMemberAndRebalance(req.MemberID, req, ch)
		return
	}
	m := g.members[req.MemberID]
	if m == nil {
		reply(ErrUnknownMemberID)
		return
	}
	if err := g.checkInstance(m, req.InstanceID); err != nil {
		reply(err)
		return
	}
	switch g.state {
	case StatePreparingRebalance:
		g.updateMember(m, req, ch)
		g.maybeCompleteJoin()
	case StateCompletingRebalance:
		if m.sameProtocols(req.Protocols) {
			// The member lost our answer; give it again.
			ch <- g.joinResult(m)
			return
		}
		g.updateMember(m, req, ch)
		g.prepareRebalance()
	case StateStable:
		if m.id == g.leader || !m.sameProtocols(req.Protocols) {
			g.updateMember(m, req, ch)
			g.prepareRebalance()
			return
		}
		m.deadline = g.c.now().Add(m.sessionTimeout)
		ch <- g.joinResult(m)
	default:
		reply(ErrUnknownMemberID)
	}
}

// supportsProtocols: the protocol type must match the group's and at least one offered
// protocol must be one that every current member supports.
func (g *group) supportsProtocols(req JoinRequest) bool {
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		all := true
		for _, m := range g.members {
			if m.id != req.MemberID && !m.offers(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (m *member) offers(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (g *group) checkInstance(m *member, instanceID string) error {
	// As Kafka: a request without an instance id is checked by member id only.
	if instanceID != "" && (m.instanceID != instanceID || g.static[instanceID] != m.id) {
		return ErrFencedInstanceID
	}
	return nil
}

func (g *group) joinUnknown(req JoinRequest, ch chan JoinResult) {
	id := newMemberID(req.ClientID)
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok && g.members[old] != nil {
			g.replaceStatic(g.members[old], id, req, ch)
			return
		}
		g.addMemberAndRebalance(id, req, ch)
		return
	}
	if req.RequireKnownMemberID {
		// KIP-394: the client must rejoin with this id, so that a client whose join response
		// was lost does not leave a ghost member behind.
		g.pending[id] = g.c.now().Add(req.SessionTimeout)
		ch <- JoinResult{Err: ErrMemberIDRequired, MemberID: id, Generation: -1}
		return
	}
	g.addMemberAndRebalance(id, req, ch)
}

func (g *group) addMemberAndRebalance(id string, req JoinRequest, ch chan JoinResult) {
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.seq++
	m := &member{id: id, instanceID: req.InstanceID, seq: g.seq}
	g.members[id] = m
	if req.InstanceID != "" {
		g.static[req.InstanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	g.updateMember(m, req, ch)
	if g.state == StatePreparingRebalance {
		g.joinedDuringDelay = true
		g.maybeCompleteJoin()
		return
	}
	g.prepareRebalance()
}

func (g *group) updateMember(m *member, req JoinRequest, ch chan JoinResult) {
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.protocolType, m.protocols = req.ProtocolType, req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	if m.joinCh != nil && m.joinCh != ch {
		// A second join replaces the first; the first learns it is stale.
		m.joinCh <- JoinResult{Err: ErrRebalanceInProgress, MemberID: m.id, Generation: -1}
	}
	m.joinCh = ch
	m.deadline = g.c.now().Add(m.sessionTimeout)
}

// replaceStatic hands a static member's place to a new member id (the same instance,
// restarted), fencing the old id.
func (g *group) replaceStatic(m *member, newID string, req JoinRequest, ch chan JoinResult) {
	oldID := m.id
	if m.joinCh != nil {
		m.joinCh <- JoinResult{Err: ErrFencedInstanceID, MemberID: oldID, Generation: -1}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- SyncResult{Err: ErrFencedInstanceID}
		m.syncCh = nil
	}
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	unchanged := m.sameProtocols(req.Protocols)
	if g.state == StateStable && unchanged {
		m.clientID, m.clientHost = req.ClientID, req.ClientHost
		m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
		m.deadline = g.c.now().Add(m.sessionTimeout)
		r := g.joinResult(m)
		r.SkipAssignment = newID == g.leader
		ch <- r
		return
	}
	g.updateMember(m, req, ch)
	if g.state == StatePreparingRebalance {
		g.maybeCompleteJoin()
		return
	}
	g.prepareRebalance()
}

// joinResult is the current generation's answer for m (the leader also gets the members).
func (g *group) joinResult(m *member) JoinResult {
	r := JoinResult{
		Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol,
		Leader: g.leader, MemberID: m.id,
	}
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			r.Members = append(r.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID, Metadata: o.metadataFor(g.protocol)})
		}
	}
	return r
}

func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	for i := 1; i < len(out); i++ { // insertion sort by join order; groups are small
		for j := i; j > 0 && out[j].seq < out[j-1].seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// prepareRebalance starts a new round of joins.
func (g *group) prepareRebalance() {
	if g.state == StateCompletingRebalance || g.state == StateStable {
		for _, m := range g.members {
			if g.state == StateCompletingRebalance {
				m.assignment = nil
			}
			if m.syncCh != nil {
				m.syncCh <- SyncResult{Err: ErrRebalanceInProgress}
				m.syncCh = nil
			}
		}
	}
	now := g.c.now()
	timeout := g.maxRebalanceTimeout()
	initial := g.state == StateEmpty && g.c.cfg.InitialRebalanceDelay > 0
	g.state = StatePreparingRebalance
	g.pendingSync = map[string]bool{}
	if initial {
		g.initialJoin, g.joinedDuringDelay = true, false
		g.initialCap = now.Add(timeout)
		g.rebalanceDeadline = now.Add(min(g.c.cfg.InitialRebalanceDelay, timeout))
	} else {
		g.rebalanceDeadline = now.Add(timeout)
	}
	g.maybeCompleteJoin()
}

func (g *group) onRebalanceDeadline(now time.Time) {
	if g.initialJoin && g.joinedDuringDelay && now.Before(g.initialCap) {
		// Members are still arriving: wait one more delay, within the rebalance timeout.
		g.joinedDuringDelay = false
		g.rebalanceDeadline = now.Add(min(g.c.cfg.InitialRebalanceDelay, g.initialCap.Sub(now)))
		return
	}
	g.initialJoin = false
	g.completeJoin()
}

// maybeCompleteJoin completes the join phase once every member has rejoined (not during the
// initial delay).
func (g *group) maybeCompleteJoin() {
	if g.state != StatePreparingRebalance || g.initialJoin || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin removes the members that did not rejoin, starts the next generation and
// answers every join.
func (g *group) completeJoin() {
	g.initialJoin = false
	for _, m := range g.members {
		if m.joinCh == nil {
			g.removeMember(m, ErrUnknownMemberID)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setEmpty()
		g.recordGeneration()
		return
	}
	g.protocol = g.selectProtocol()
	if g.members[g.leader] == nil {
		g.leader = g.sortedMembers()[0].id
	}
	g.state = StateCompletingRebalance
	now := g.c.now()
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
	for _, m := range g.sortedMembers() {
		g.pendingSync[m.id] = true
		m.deadline = now.Add(m.sessionTimeout)
		ch := m.joinCh
		m.joinCh = nil
		ch <- g.joinResult(m)
	}
}

// selectProtocol picks, among the protocols every member supports, the one most members
// prefer (each member votes for the first of its protocols that all support), as Kafka does.
func (g *group) selectProtocol() string {
	members := g.sortedMembers()
	var candidates []string
	for _, p := range members[0].protocols {
		all := true
		for _, m := range members[1:] {
			if !m.offers(p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		panic("BUG: group " + g.id + " has no protocol all members support")
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// removeMember drops m, answering its pending requests with err.
func (g *group) removeMember(m *member, err error) {
	if m.joinCh != nil {
		m.joinCh <- JoinResult{Err: err, MemberID: m.id, Generation: -1}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- SyncResult{Err: err}
		m.syncCh = nil
	}
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// afterRemoval rebalances as the state requires once members left or expired.
func (g *group) afterRemoval() {
	switch g.state {
	case StateStable, StateCompletingRebalance:
		g.prepareRebalance()
	case StatePreparingRebalance:
		g.maybeCompleteJoin()
	}
}

func (g *group) onSyncDeadline() {
	// Members that got their join answer but never synced are gone.
	removed := false
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			g.removeMember(m, ErrUnknownMemberID)
			removed = true
		}
	}
	if removed {
		g.prepareRebalance()
	}
}

func (g *group) expireSessions(now time.Time) {
	removed := false
	for _, m := range g.members {
		if m.joinCh == nil && m.syncCh == nil && !now.Before(m.deadline) {
			g.c.log.Info("group member session expired", "group", g.id, "member", m.id, "session_timeout", m.sessionTimeout)
			g.removeMember(m, ErrUnknownMemberID)
			removed = true
		}
	}
	if removed {
		g.afterRemoval()
	}
}

// validateMember checks a member's identity for SyncGroup, Heartbeat and OffsetCommit.
func (g *group) validateMember(memberID, instanceID string) (*member, error) {
	m := g.members[memberID]
	if m == nil {
		if instanceID != "" && g.static[instanceID] != "" {
			return nil, ErrFencedInstanceID
		}
		return nil, ErrUnknownMemberID
	}
	if err := g.checkInstance(m, instanceID); err != nil {
		return nil, err
	}
	return m, nil
}

func (g *group) sync(req SyncRequest, ch chan SyncResult) {
	reply := func(err error) { ch <- SyncResult{Err: err} }
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	switch {
	case err != nil:
		reply(err)
		return
	case req.Generation != g.generation:
		reply(ErrIllegalGeneration)
		return
	case req.ProtocolType != "" && req.ProtocolType != g.protocolType,
		req.Protocol != "" && req.Protocol != g.protocol:
		reply(ErrInconsistentProtocol)
		return
	}
	switch g.state {
	case StatePreparingRebalance:
		reply(ErrRebalanceInProgress)
	case StateCompletingRebalance:
		if m.syncCh != nil && m.syncCh != ch {
			m.syncCh <- SyncResult{Err: ErrRebalanceInProgress} // superseded by this one
		}
		m.syncCh = ch
		delete(g.pendingSync, m.id)
		m.deadline = g.c.now().Add(m.sessionTimeout)
		if m.id != g.leader {
			return
		}
		for id, o := range g.members {
			o.assignment = req.Assignments[id]
		}
		g.state = StateStable
		g.recordGeneration()
		for _, o := range g.members {
			if o.syncCh != nil {
				o.syncCh <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: o.assignment}
				o.syncCh = nil
				o.deadline = g.c.now().Add(o.sessionTimeout)
			}
		}
	case StateStable:
		m.deadline = g.c.now().Add(m.sessionTimeout)
		ch <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
	default:
		reply(ErrUnknownMemberID)
	}
}

func (g *group) heartbeat(req HeartbeatRequest) error {
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err
	}
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	m.deadline = g.c.now().Add(m.sessionTimeout)
	switch g.state {
	case StatePreparingRebalance:
		return ErrRebalanceInProgress
	case StateCompletingRebalance, StateStable:
		return nil
	}
	return ErrUnknownMemberID
}

func (g *group) leave(members []LeaveMember) []error {
	errs := make([]error, len(members))
	removed := false
	for i, lm := range members {
		id := lm.MemberID
		if id == "" && lm.InstanceID != "" {
			id = g.static[lm.InstanceID]
		}
		if _, ok := g.pending[id]; ok && id != "" {
			delete(g.pending, id)
			continue
		}
		m := g.members[id]
		if m == nil {
			errs[i] = ErrUnknownMemberID
			continue
		}
		if lm.InstanceID != "" && m.instanceID != lm.InstanceID {
			errs[i] = ErrFencedInstanceID
			continue
		}
		g.removeMember(m, ErrUnknownMemberID)
		removed = true
	}
	if removed {
		g.afterRemoval()
	}
	return errs
}

// recordGeneration writes the group's GroupMetadata record to __consumer_offsets, as Kafka
// does once the leader's assignment is in (and when a generation ends empty): what readers
// of the topic see of the group. A failure is logged; the group goes on.
func (g *group) recordGeneration() {
	m := &GroupMetadata{ProtocolType: g.protocolType, Generation: g.generation, Protocol: g.protocol,
		Leader: g.leader, CurrentStateMs: g.c.now().UnixMilli()}
	for _, mb := range g.sortedMembers() {
		if len(mb.id) > maxStringLen { // a client id near the limit makes a member id over it
			g.c.rl.Warn("cannot record group metadata", "cannot record group metadata: member id too long", "group", g.id)
			return
		}
		m.Members = append(m.Members, MemberMetadata{
			MemberID: mb.id, InstanceID: mb.instanceID, ClientID: mb.clientID, ClientHost: mb.clientHost,
			RebalanceTimeoutMs: int32(mb.rebalanceTimeout.Milliseconds()), SessionTimeoutMs: int32(mb.sessionTimeout.Milliseconds()),
			Subscription: mb.metadataFor(g.protocol), Assignment: mb.assignment,
		})
	}
	if err := g.c.offsets.storeGroup(g.id, m); err != nil {
		g.c.rl.Warn("cannot record group metadata", "cannot record group metadata", "group", g.id, "err", err)
	}
}
