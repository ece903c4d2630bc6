package group

// KIP-848 groups in __consumer_offsets: what the topic holds of each group (cgRecords, the
// last value of each of its keys, kept per shard as records are applied), the records that
// bring it to the group's current state (written by the group's goroutine after every change,
// as Kafka's coordinator writes them) and the tombstones that delete it.
//
// The group's goroutine builds an image of the group in the records' terms (consumerImage)
// and the shard, under its lock, writes the records whose value differs from what the topic
// holds, as one batch. So a write that failed (a full disk) is made good by the next one, and
// a heartbeat is answered only once the batch that records its effect is durable, as an
// offset commit is.

import (
	"bytes"
	"context"
	"sort"
	"time"
)

// TopicIDs is implemented by a Topics that knows Kafka's topic ids (StreamTopics does).
// KIP-848 groups are recorded in __consumer_offsets only with it: the records name topics by
// id.
type TopicIDs interface {
	TopicID(name string) ([16]byte, bool)
	TopicName(id [16]byte) (string, bool)
}

// cgRecords is what __consumer_offsets holds of one KIP-848 group. Values are never modified
// once stored (they are replaced), so they may be shared.
type cgRecords struct {
	meta    *cgMetaValue
	tmeta   *cgTargetMetaValue
	members map[string]*cgMemberRecords
}

// cgMemberRecords is what the topic holds of one member.
type cgMemberRecords struct {
	member    *cgMemberValue
	target    []cgTopicPartitions
	hasTarget bool
	current   *cgCurrentValue
}

func (m *cgMemberRecords) empty() bool {
	return m.member == nil && !m.hasTarget && m.current == nil
}

// applyConsumerLocked applies one KIP-848 record. sh.mu held.
func (sh *offsetShard) applyConsumerLocked(r coordRecord) {
	g := sh.cgroups[r.Group]
	if g == nil {
		g = &cgRecords{members: map[string]*cgMemberRecords{}}
		sh.cgroups[r.Group] = g
	}
	var m *cgMemberRecords
	if r.Kind == kindConsumerMember || r.Kind == kindConsumerTarget || r.Kind == kindConsumerCurrent {
		if m = g.members[r.C.MemberID]; m == nil {
			m = &cgMemberRecords{}
			g.members[r.C.MemberID] = m
		}
	}
	switch r.Kind {
	case kindConsumerGroup:
		g.meta = r.C.Meta
	case kindConsumerTargetMeta:
		g.tmeta = r.C.TMeta
	case kindConsumerMember:
		m.member = r.C.Member
	case kindConsumerTarget:
		m.target, m.hasTarget = r.C.Target, r.C.TargetSet
	case kindConsumerCurrent:
		m.current = r.C.Current
	}
	if m != nil && m.empty() {
		delete(g.members, r.C.MemberID)
	}
	if g.meta == nil && g.tmeta == nil && len(g.members) == 0 {
		delete(sh.cgroups, r.Group)
	}
}

// consumerTombstonesLocked deletes everything the topic holds of group, members first, as
// Kafka orders them (its replay refuses a member's metadata tombstone before its assignments',
// and the group's before its members'). sh.mu held.
func (sh *offsetShard) consumerTombstonesLocked(group string) []coordRecord {
	old := sh.cgroups[group]
	if old == nil {
		return nil
	}
	var recs []coordRecord
	for _, id := range sortedKeys(old.members) {
		recs = append(recs, memberTombstones(group, id, old.members[id])...)
	}
	if old.tmeta != nil {
		recs = append(recs, coordRecord{Kind: kindConsumerTargetMeta, Group: group})
	}
	if old.meta != nil {
		recs = append(recs, coordRecord{Kind: kindConsumerGroup, Group: group})
	}
	return recs
}

func memberTombstones(group, id string, m *cgMemberRecords) []coordRecord {
	var recs []coordRecord
	if m.current != nil {
		recs = append(recs, coordRecord{Kind: kindConsumerCurrent, Group: group, C: consumerRecord{MemberID: id}})
	}
	if m.hasTarget {
		recs = append(recs, coordRecord{Kind: kindConsumerTarget, Group: group, C: consumerRecord{MemberID: id}})
	}
	if m.member != nil {
		recs = append(recs, coordRecord{Kind: kindConsumerMember, Group: group, C: consumerRecord{MemberID: id}})
	}
	return recs
}

// consumerDiff lists the records that turn old (nil: nothing) into img. With only set, img
// holds that member alone and the others are left as they are.
func consumerDiff(group string, old, img *cgRecords, only string) []coordRecord {
	if old == nil {
		old = &cgRecords{}
	}
	var recs []coordRecord
	differs := func(a, b coordRecord) bool {
		if consumerValueIsNull(&a) != consumerValueIsNull(&b) {
			return true
		}
		if consumerValueIsNull(&a) {
			return false
		}
		return !bytes.Equal(appendConsumerValue(nil, &a), appendConsumerValue(nil, &b))
	}
	add := func(now, was coordRecord) {
		if differs(now, was) {
			recs = append(recs, now)
		}
	}
	// Members that left: their records go first, then the epoch that their leaving bumped.
	for _, id := range sortedKeys(old.members) {
		if only == "" && img.members[id] == nil {
			recs = append(recs, memberTombstones(group, id, old.members[id])...)
		}
	}
	ids := sortedKeys(img.members)
	rec := func(kind recordKind, id string, m *cgMemberRecords) coordRecord {
		r := coordRecord{Kind: kind, Group: group, C: consumerRecord{MemberID: id}}
		if m == nil {
			return r
		}
		switch kind {
		case kindConsumerMember:
			r.C.Member = m.member
		case kindConsumerTarget:
			r.C.Target, r.C.TargetSet = m.target, m.hasTarget
		case kindConsumerCurrent:
			r.C.Current = m.current
		}
		return r
	}
	for _, id := range ids {
		add(rec(kindConsumerMember, id, img.members[id]), rec(kindConsumerMember, id, old.members[id]))
	}
	add(coordRecord{Kind: kindConsumerGroup, Group: group, C: consumerRecord{Meta: img.meta}},
		coordRecord{Kind: kindConsumerGroup, Group: group, C: consumerRecord{Meta: old.meta}})
	for _, id := range ids {
		add(rec(kindConsumerTarget, id, img.members[id]), rec(kindConsumerTarget, id, old.members[id]))
	}
	if img.tmeta != nil && old.tmeta != nil && img.tmeta.AssignmentEpoch == old.tmeta.AssignmentEpoch {
		img.tmeta = old.tmeta // the same assignment: keep the time it was computed
	}
	add(coordRecord{Kind: kindConsumerTargetMeta, Group: group, C: consumerRecord{TMeta: img.tmeta}},
		coordRecord{Kind: kindConsumerTargetMeta, Group: group, C: consumerRecord{TMeta: old.tmeta}})
	for _, id := range ids {
		add(rec(kindConsumerCurrent, id, img.members[id]), rec(kindConsumerCurrent, id, old.members[id]))
	}
	return recs
}

// pendingWrite is a batch to wait for before answering (zero: nothing to wait for).
type pendingWrite struct {
	sh *offsetShard
	d  durable
}

func (w pendingWrite) wait(ctx context.Context) error {
	if w.sh == nil {
		return nil
	}
	return w.sh.waitDurable(ctx, w.d)
}

// syncConsumer writes the records that bring what the topic holds of group to img.
func (s *offsetStore) syncConsumer(group string, img *cgRecords, only string) (pendingWrite, error) {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recs := consumerDiff(group, sh.cgroups[group], img, only)
	if sh.cgroups[group] == nil && sh.meta[group] != nil && len(recs) > 0 {
		// The name was an (emptied) classic group's: its metadata goes, as Kafka deletes it
		// when a consumer group takes the name over.
		recs = append([]coordRecord{{Kind: kindGroup, Group: group}}, recs...)
	}
	if len(recs) == 0 {
		return pendingWrite{}, nil
	}
	d, err := sh.appendLocked(recs, s.now().UnixMilli(), noProducer)
	if err != nil {
		return pendingWrite{}, err
	}
	return pendingWrite{sh, d}, nil
}

// consumerRecords is what the topic holds of group (nil: nothing).
func (s *offsetStore) consumerRecords(group string) *cgRecords {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cgroups[group]
}

// persistConsumer records the group's state in __consumer_offsets; the caller answers its
// client once the returned write is durable. m is the member whose heartbeat it answers
// (nil: none): while the group's epochs and members are what the last complete write
// recorded, only m can have changed, and only its records are compared (a heartbeat then
// costs one member's records, not the whole group's). Without topic ids (a Topics that does
// not know them) nothing is recorded. g's goroutine.
func (g *group) persistConsumer(m *consumerMember) (pendingWrite, error) {
	ids, ok := g.c.cfg.Topics.(TopicIDs)
	cg := g.cg
	if !ok || cg == nil {
		return pendingWrite{}, nil
	}
	full := m == nil || !cg.saved || cg.membersChanged || cg.epoch != cg.savedEpoch || cg.targetEpoch != cg.savedTargetEpoch
	only := ""
	if !full {
		only = m.id
	}
	w, err := g.c.offsets.syncConsumer(g.id, cg.image(ids, g.c.now(), only), only)
	if err != nil {
		g.c.rl.Warn("cannot record consumer group", "cannot record consumer group", "group", g.id, "err", err)
		cg.saved = false
		return pendingWrite{}, err
	}
	if full {
		cg.saved, cg.membersChanged, cg.savedEpoch, cg.savedTargetEpoch = true, false, cg.epoch, cg.targetEpoch
	}
	if w.sh != nil {
		cg.lastWrite = w
	} else if cg.lastWrite.sh != nil && cg.lastWrite.sh.j != nil {
		// Nothing new; the state answered may still be in a batch under way (a journal wait
		// for what is already durable is free; without a journal it would cost an fsync).
		w = cg.lastWrite
	}
	return w, nil
}

// image is the group in the records' terms (with only set, of that member alone).
func (cg *consumerGroup) image(ids TopicIDs, now time.Time, only string) *cgRecords {
	img := &cgRecords{
		meta:    &cgMetaValue{Epoch: cg.epoch, MetadataHash: cg.topicsHash},
		tmeta:   &cgTargetMetaValue{AssignmentEpoch: cg.targetEpoch, TimestampMs: now.UnixMilli()},
		members: make(map[string]*cgMemberRecords, len(cg.members)),
	}
	for id, m := range cg.members {
		if only != "" && id != only {
			continue
		}
		rt := int32(-1)
		if m.rebalanceTimeout > 0 {
			rt = int32(min(m.rebalanceTimeout.Milliseconds(), int64(1<<31-1)))
		}
		cur := &cgCurrentValue{MemberEpoch: m.epoch, PrevEpoch: m.prevEpoch,
			Assigned: idPartitions(ids, m.assigned, m.assignedAt), Revoking: idPartitions(ids, m.revoking, nil)}
		switch {
		case m.departed: // a static member away for a restart: Kafka's epoch -2
			cur.MemberEpoch, cur.PrevEpoch = -2, m.epoch
		case len(m.revoking) > 0:
			cur.State = memberStateUnrevoked
		case len(m.assigned) != len(cg.target[id]):
			cur.State = memberStateUnreleased
		}
		img.members[id] = &cgMemberRecords{
			member: &cgMemberValue{InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
				Subscribed: m.subscribed, Regex: m.regex, RebalanceTimeoutMs: rt, Assignor: m.assignor},
			target: idPartitions(ids, cg.target[id], nil), hasTarget: true,
			current: cur,
		}
	}
	return img
}

// idPartitions lists set by topic id, topics in name order (partitions of a topic that no
// longer exists are left out); with epochs, each partition's assignment epoch too.
func idPartitions(ids TopicIDs, set map[TopicPartition]bool, epochs map[TopicPartition]int32) []cgTopicPartitions {
	var out []cgTopicPartitions
	last := ""
	skip := false
	for _, tp := range sortedTPs(set) {
		if len(out) == 0 || tp.Topic != last {
			last = tp.Topic
			id, ok := ids.TopicID(tp.Topic)
			if skip = !ok; skip {
				continue
			}
			out = append(out, cgTopicPartitions{TopicID: id})
			if epochs != nil {
				out[len(out)-1].Epochs = []int32{}
			}
		}
		if skip {
			continue
		}
		t := &out[len(out)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
		if epochs != nil {
			t.Epochs = append(t.Epochs, epochs[tp])
		}
	}
	return out
}

// namedPartitions is the inverse of idPartitions: partitions of topics that are gone (or were
// created again under a new id) are dropped.
func namedPartitions(ids TopicIDs, tps []cgTopicPartitions, epochs map[TopicPartition]int32, defEpoch int32) map[TopicPartition]bool {
	out := map[TopicPartition]bool{}
	for _, t := range tps {
		name, ok := ids.TopicName(t.TopicID)
		if !ok {
			continue
		}
		for i, p := range t.Partitions {
			tp := TopicPartition{name, p}
			out[tp] = true
			if epochs != nil {
				epochs[tp] = defEpoch
				if t.Epochs != nil {
					epochs[tp] = t.Epochs[i]
				}
			}
		}
	}
	return out
}

// consumerGroupNames lists the KIP-848 groups the topic holds. sorted.
func (s *offsetStore) consumerGroupNames() []string {
	var names []string
	for _, sh := range s.shards {
		sh.mu.Lock()
		for g := range sh.cgroups {
			names = append(names, g)
		}
		sh.mu.Unlock()
	}
	sort.Strings(names)
	return names
}
