package group

// Groups across a restart: Kafka's coordinator loads each group from its records in
// __consumer_offsets, so that members carry on when the coordinator comes back (they
// reconnect, heartbeat and commit as before, and no rebalance happens). yard does the same
// from the records it writes: a classic group from its last GroupMetadata record
// (recordGeneration), a KIP-848 group from its ConsumerGroup* records (consumer_persist.go)
// at its group epoch, target assignment, and each member's epoch, subscription and assignment.

import (
	"regexp"
	"time"
)

// restoreGroups recreates, of names, the classic groups whose last GroupMetadata record has
// members, Stable at their recorded generation, and the KIP-848 groups their records hold
// (restoreConsumer). Each member gets a full session from now: one that does not come back
// expires and the group rebalances without it, as after any missed heartbeats.
func (c *Coordinator) restoreGroups(names []string, adopt func(*group) bool) {
	restored, consumers := 0, 0
	ids, _ := c.cfg.Topics.(TopicIDs)
	for _, name := range names {
		g := newGroup(c, name)
		classic := false
		if m := c.offsets.groupMeta(name); m != nil && len(m.Members) > 0 && m.Generation > 0 && m.Protocol != "" {
			g.restore(m)
			classic = true
		} else if r := c.offsets.consumerRecords(name); r != nil && r.meta != nil && ids != nil {
			g.restoreConsumer(r, ids)
		} else {
			continue // an empty group: known from its offsets and metadata alone
		}
		if !adopt(g) { // placement.go: started, unless its partition was unloaded meanwhile
			continue
		}
		if classic {
			restored++
		} else {
			consumers++
		}
	}
	if restored > 0 {
		c.log.Info("classic groups restored from their last generation", "groups", restored)
	}
	if consumers > 0 {
		c.log.Info("consumer groups restored", "groups", consumers)
	}
}

// restoreConsumer sets a new group (before its goroutine runs) to the KIP-848 state r
// records. Each member gets a full session from now, as in Kafka after a coordinator moves:
// one that does not come back expires and the group rebalances without it. A member whose
// records are incomplete (a record that could not be decoded) is left out: it is fenced when
// it heartbeats (UNKNOWN_MEMBER_ID) and rejoins.
func (g *group) restoreConsumer(r *cgRecords, ids TopicIDs) {
	now := g.c.now()
	g.typ, g.protocolType = TypeConsumer, ConsumerProtocolType
	cg := &consumerGroup{members: map[string]*consumerMember{}, target: map[string]map[TopicPartition]bool{},
		assignor: AssignorUniform, epoch: r.meta.Epoch, topicsHash: r.meta.MetadataHash}
	if r.tmeta != nil {
		cg.targetEpoch = r.tmeta.AssignmentEpoch
	}
	dropped := false
	for id, mr := range r.members {
		if mr.member == nil || mr.current == nil {
			dropped = true
			continue
		}
		mv, cur := mr.member, mr.current
		m := &consumerMember{id: id, instanceID: mv.InstanceID, rackID: mv.RackID, clientID: mv.ClientID, clientHost: mv.ClientHost,
			subscribed: sortedCopy(mv.Subscribed), regex: mv.Regex, assignor: mv.Assignor,
			epoch: cur.MemberEpoch, prevEpoch: cur.PrevEpoch, assignedAt: map[TopicPartition]int32{},
			deadline: now.Add(g.c.cfg.ConsumerSessionTimeout)}
		if len(m.subscribed) == 0 {
			m.subscribed = nil
		}
		if m.regex != "" {
			re, err := regexp.Compile(m.regex)
			if err != nil {
				dropped = true
				continue // not one yard accepted: the member rejoins
			}
			m.re = re
		}
		if mv.RebalanceTimeoutMs > 0 {
			m.rebalanceTimeout = time.Duration(mv.RebalanceTimeoutMs) * time.Millisecond
		}
		if cur.MemberEpoch == -2 { // a static member away for a restart
			m.departed, m.epoch, m.prevEpoch = true, cur.PrevEpoch, cur.PrevEpoch
		}
		m.assigned = namedPartitions(ids, cur.Assigned, m.assignedAt, m.epoch)
		m.revoking = namedPartitions(ids, cur.Revoking, nil, 0)
		if len(m.revoking) > 0 {
			m.revokeDeadline = now.Add(max(m.rebalanceTimeout, time.Second))
		}
		m.lastSent = tpSig(m.assigned)
		cg.members[id] = m
		if mr.hasTarget {
			cg.target[id] = namedPartitions(ids, mr.target, nil, 0)
		}
	}
	if dropped {
		cg.epoch++ // the target is computed again without the members left out
	}
	cg.assignor = cg.chooseAssignor()
	cg.resolveSubscriptions(g)
	g.cg = cg
	g.state = cg.state()
	if len(cg.members) == 0 {
		g.setEmpty()
	}
}

// restore sets a new group (before its goroutine runs) to the generation m records.
func (g *group) restore(m *GroupMetadata) {
	now := g.c.now()
	g.protocolType, g.protocol, g.generation, g.leader = m.ProtocolType, m.Protocol, m.Generation, m.Leader
	for _, mm := range m.Members {
		g.seq++
		mb := &member{
			id: mm.MemberID, instanceID: mm.InstanceID, clientID: mm.ClientID, clientHost: mm.ClientHost,
			protocolType: m.ProtocolType,
			// The record keeps the chosen protocol's subscription only (Kafka's does too).
			protocols:        []Protocol{{Name: m.Protocol, Metadata: mm.Subscription}},
			sessionTimeout:   time.Duration(mm.SessionTimeoutMs) * time.Millisecond,
			rebalanceTimeout: time.Duration(mm.RebalanceTimeoutMs) * time.Millisecond,
			assignment:       mm.Assignment,
			seq:              g.seq,
		}
		mb.deadline = now.Add(mb.sessionTimeout)
		g.members[mb.id] = mb
		if mb.instanceID != "" {
			g.static[mb.instanceID] = mb.id
		}
	}
	g.state = StateStable
}
