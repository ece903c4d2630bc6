package group

// DescribeGroups, ListGroups, DeleteGroups and the lag view for the admin plane.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerProtocolType is the protocol type of Kafka consumers (ConsumerProtocol bytes).
const ConsumerProtocolType = "consumer"

// Describe describes one group: ErrGroupIDNotFound if it has neither members nor offsets.
func (c *Coordinator) Describe(ctx context.Context, id string) (GroupDescription, error) {
	g, err := c.lookup(id, false)
	if err != nil {
		return GroupDescription{}, err
	}
	if g != nil {
		d, err := call(ctx, g, g.describe)
		if err == nil && d.State != StateDead {
			return d, nil
		}
		if err != nil && err != ErrCoordinatorNotAvailable {
			return GroupDescription{}, err
		}
	}
	if c.offsets.hasGroup(id) {
		d := GroupDescription{Group: id, State: StateEmpty, Type: TypeClassic}
		if m := c.offsets.groupMeta(id); m != nil {
			d.ProtocolType = m.ProtocolType
		}
		return d, nil
	}
	return GroupDescription{Group: id, State: StateDead}, ErrGroupIDNotFound
}

func (g *group) describe() GroupDescription {
	d := GroupDescription{Group: g.id, State: g.state, Type: g.typ, ProtocolType: g.protocolType}
	if g.dead {
		d.State = StateDead
		return d
	}
	if g.cg != nil && len(g.cg.members) > 0 {
		return g.cg.describeClassic(g)
	}
	if g.state == StateStable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == StateStable {
			md.Metadata, md.Assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// List lists every group: those with a goroutine and those known only by their offsets.
func (c *Coordinator) List(ctx context.Context) []GroupListing {
	seen := map[string]bool{}
	var out []GroupListing
	for _, g := range c.groupList() {
		l, err := call(ctx, g, func() GroupListing {
			return GroupListing{Group: g.id, ProtocolType: g.protocolType, State: g.state, Type: g.typ}
		})
		if err != nil || l.State == StateDead {
			continue
		}
		seen[g.id] = true
		out = append(out, l)
	}
	for _, name := range c.offsets.groupNames() {
		if !seen[name] {
			l := GroupListing{Group: name, State: StateEmpty, Type: TypeClassic}
			if m := c.offsets.groupMeta(name); m != nil {
				l.ProtocolType = m.ProtocolType
			}
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// DeleteGroup deletes an empty group and its offsets.
func (c *Coordinator) DeleteGroup(ctx context.Context, id string) error {
	g, err := c.lookup(id, false)
	if err != nil {
		return err
	}
	found := c.offsets.hasGroup(id)
	if g != nil {
		derr, err := call(ctx, g, func() error {
			if g.dead {
				return ErrGroupIDNotFound
			}
			if g.state != StateEmpty || !g.isEmpty() {
				return ErrNonEmptyGroup
			}
			g.dead, g.state = true, StateDead
			return nil
		})
		if err != nil {
			return err
		}
		if derr == nil {
			found = true
		} else if derr != ErrGroupIDNotFound {
			return derr
		}
	}
	if !found {
		return ErrGroupIDNotFound
	}
	return c.offsets.deleteGroup(ctx, id)
}

// subscribedTopics are the topics the group's current members subscribe to (Kafka refuses
// OffsetDelete for them); ErrNonEmptyGroup for a non-empty group whose protocol we cannot
// read.
func (g *group) subscribedTopics() (map[string]bool, error) {
	out := map[string]bool{}
	if g.cg != nil {
		for _, m := range g.cg.members {
			for _, t := range m.effective {
				out[t] = true
			}
		}
	}
	if len(g.members) == 0 {
		return out, nil
	}
	if g.protocolType != ConsumerProtocolType {
		return nil, ErrNonEmptyGroup
	}
	for _, m := range g.members {
		md := m.metadataFor(g.protocol)
		if md == nil && len(m.protocols) > 0 {
			md = m.protocols[0].Metadata
		}
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(md); err != nil {
			continue
		}
		for _, t := range meta.Topics {
			out[t] = true
		}
	}
	return out, nil
}

// assignedPartitions maps each partition the group's members own to the member.
func (g *group) assignedPartitions() map[TopicPartition]MemberDescription {
	out := map[TopicPartition]MemberDescription{}
	if g.cg != nil {
		for _, m := range g.cg.members {
			md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
			for tp := range m.assigned {
				out[tp] = md
			}
		}
	}
	if g.state != StateStable || g.protocolType != ConsumerProtocolType {
		return out
	}
	for _, m := range g.members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.assignment); err != nil {
			continue
		}
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		for _, t := range a.Topics {
			for _, p := range t.Partitions {
				out[TopicPartition{t.Topic, p}] = md
			}
		}
	}
	return out
}

// Lag reports, for every group, its state and per partition the committed offset, the
// log-end offset and their difference (for the admin plane's metrics).
func (c *Coordinator) Lag(ctx context.Context) ([]GroupLag, error) {
	var out []GroupLag
	for _, l := range c.List(ctx) {
		gl := GroupLag{Group: l.Group, State: l.State}
		assigned := map[TopicPartition]MemberDescription{}
		if g, _ := c.lookup(l.Group, false); g != nil {
			a, err := call(ctx, g, g.assignedPartitions)
			if err != nil && ctx.Err() != nil {
				return nil, err
			}
			if a != nil {
				assigned = a
			}
		}
		committed := map[TopicPartition]int64{}
		for _, f := range c.offsets.fetch(l.Group, nil) {
			committed[f.TopicPartition] = f.Offset
		}
		var tps []TopicPartition
		for tp := range committed {
			tps = append(tps, tp)
		}
		for tp := range assigned {
			if _, ok := committed[tp]; !ok {
				tps = append(tps, tp)
			}
		}
		sortTPs(tps)
		for _, tp := range tps {
			pl := PartitionLag{Topic: tp.Topic, Partition: tp.Partition, Committed: -1, LogEnd: -1, Lag: -1}
			if off, ok := committed[tp]; ok {
				pl.Committed = off
			}
			if end, ok := c.cfg.Topics.EndOffset(tp.Topic, tp.Partition); ok {
				pl.LogEnd = end
			}
			if pl.Committed >= 0 && pl.LogEnd >= 0 {
				pl.Lag = max(pl.LogEnd-pl.Committed, 0)
			}
			if m, ok := assigned[tp]; ok {
				pl.HasAssignee, pl.MemberID, pl.ClientID, pl.ClientHost = true, m.MemberID, m.ClientID, m.ClientHost
			}
			gl.Partitions = append(gl.Partitions, pl)
		}
		out = append(out, gl)
	}
	return out, nil
}
