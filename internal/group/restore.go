package group

// Classic groups across a restart: Kafka's coordinator loads each group from its last
// GroupMetadata record, so that members carry on at their generation when the coordinator
// comes back (they reconnect, heartbeat and commit as before, and no rebalance happens).
// yard does the same from the records it writes in __consumer_offsets (recordGeneration).

import "time"

// restoreGroups recreates, Stable at their recorded generation, the classic groups whose last
// GroupMetadata record has members. Each member gets a full session from now: one that does
// not come back expires and the group rebalances without it, as after any missed heartbeats.
func (c *Coordinator) restoreGroups() {
	restored := 0
	for _, name := range c.offsets.groupNames() {
		m := c.offsets.groupMeta(name)
		if m == nil || len(m.Members) == 0 || m.Generation <= 0 || m.Protocol == "" {
			continue // an empty group: known from its offsets and metadata alone
		}
		g := newGroup(c, name)
		g.restore(m)
		c.mu.Lock()
		c.groups[name] = g
		c.wg.Add(1)
		c.mu.Unlock()
		go func() {
			defer c.wg.Done()
			g.run()
		}()
		restored++
	}
	if restored > 0 {
		c.log.Info("classic groups restored from their last generation", "groups", restored)
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
