package group

// KIP-848 consumer groups (ConsumerGroupHeartbeat), run on the group's goroutine.
//
// The coordinator computes every member's target assignment itself with a server-side
// assignor ("uniform", the default, or "range") whenever the group epoch moves (a member joins
// or leaves, a subscription or a subscribed topic's partition count changes). Each member then
// converges to its target by heartbeats: partitions it must give up are revoked first (its
// assignment shrinks, its epoch stays) and it acknowledges by heartbeating without them; only
// then does its epoch move to the target epoch, and it receives the new partitions that no
// other member still holds. So a partition is never owned by two members at once.
//
// Every change is recorded in __consumer_offsets in Kafka's records (consumer_persist.go)
// before the heartbeat that made it is answered, and the group is restored from them when
// yard starts (restore.go): its members heartbeat on at their epochs.

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Assignor names (group.consumer.assignors).
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat, with topics by name (the front end
// translates topic ids).
type ConsumerHeartbeatRequest struct {
	Group            string
	MemberID         string
	MemberEpoch      int32 // 0 = join, -1 = leave, -2 = static member leaving temporarily
	InstanceID       string
	RackID           string
	ClientID         string
	ClientHost       string
	RebalanceTimeout time.Duration // 0 = unchanged
	// Nil fields are unchanged since the last heartbeat.
	SubscribedTopics []string
	SubscribedRegex  *string // RE2 syntax, as Kafka's RE2/J; "" = none
	ServerAssignor   *string
	Owned            []TopicPartition
	OwnedSet         bool // Owned was sent (it may be empty)
}

// ConsumerHeartbeatResult answers it. Assignment is nil when unchanged.
type ConsumerHeartbeatResult struct {
	Err               error
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	Assignment        []TopicPartition
	AssignmentSet     bool

	persist pendingWrite // the batch recording the heartbeat's effect, to wait for
}

// ConsumerMemberDescription is one member in ConsumerGroupDescribe.
type ConsumerMemberDescription struct {
	MemberID, InstanceID, RackID, ClientID, ClientHost string
	MemberEpoch                                        int32
	Subscribed                                         []string
	SubscribedRegex                                    string
	Assigned, Target                                   []TopicPartition
}

// ConsumerGroupDescription answers ConsumerGroupDescribe.
type ConsumerGroupDescription struct {
	Group           string
	State           State
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
}

// consumerGroup is the KIP-848 state of a group.
type consumerGroup struct {
	members     map[string]*consumerMember
	epoch       int32 // group epoch
	targetEpoch int32
	target      map[string]map[TopicPartition]bool
	assignor    string
	topicsHash  int64 // of the subscribed topics and their partition counts, to notice changes
	lastWrite   pendingWrite
	// What the last complete write of the group recorded (consumer_persist.go): while the
	// epochs and the members are the same, a heartbeat can only have changed its own member.
	membersChanged               bool // a member joined, left or was replaced since
	savedEpoch, savedTargetEpoch int32
	saved                        bool
}

// consumerMember is a KIP-848 member.
type consumerMember struct {
	id, instanceID, rackID, clientID, clientHost string
	epoch, prevEpoch                             int32
	subscribed                                   []string // topic names, as sent
	regex                                        string
	re                                           *regexp.Regexp
	effective                                    []string // names plus the regex's matches
	assignor                                     string
	rebalanceTimeout                             time.Duration
	assigned                                     map[TopicPartition]bool
	assignedAt                                   map[TopicPartition]int32 // member epoch each assigned partition came with (KIP-1251)
	revoking                                     map[TopicPartition]bool
	revokeDeadline                               time.Time
	lastSent                                     string // the assignment last sent, canonical
	deadline                                     time.Time
	departed                                     bool // static member gone for a restart (epoch -2)
}

// ConsumerHeartbeat is a KIP-848 ConsumerGroupHeartbeat.
func (c *Coordinator) ConsumerHeartbeat(ctx context.Context, req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	fail := func(err error) ConsumerHeartbeatResult {
		return ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}
	}
	if req.Group == "" {
		return fail(ErrInvalidGroupID)
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != AssignorUniform && *req.ServerAssignor != AssignorRange {
		return fail(fmt.Errorf("%w: %q; the server assignors are %q and %q", ErrUnsupportedAssignor, *req.ServerAssignor, AssignorUniform, AssignorRange))
	}
	if req.MemberEpoch == 0 && req.SubscribedTopics == nil && (req.SubscribedRegex == nil || *req.SubscribedRegex == "") {
		return fail(fmt.Errorf("%w: SubscribedTopicNames or SubscribedTopicRegex must be set when joining", ErrInvalidRequest))
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != "" {
		if _, err := regexp.Compile(*req.SubscribedRegex); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrInvalidRegex, err))
		}
	}
	g, err := c.lookup(req.Group, req.MemberEpoch == 0)
	if err != nil {
		return fail(err)
	}
	if g == nil {
		return fail(ErrUnknownMemberID)
	}
	res, err := call(ctx, g, func() ConsumerHeartbeatResult { return g.consumerHeartbeat(req) })
	if err != nil {
		return fail(err)
	}
	if err := res.persist.wait(ctx); err != nil {
		return fail(err)
	}
	return res
}

func (g *group) consumerHeartbeat(req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
	fail := func(err error) ConsumerHeartbeatResult {
		return ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}
	}
	if g.dead {
		return fail(ErrCoordinatorNotAvailable)
	}
	if len(g.members) > 0 || len(g.pending) > 0 {
		return fail(fmt.Errorf("%w: group %s has classic-protocol members", ErrGroupTypeMismatch, g.id))
	}
	if g.cg == nil {
		g.cg = &consumerGroup{members: map[string]*consumerMember{}, target: map[string]map[TopicPartition]bool{}, assignor: AssignorUniform}
	}
	g.typ, g.protocolType = TypeConsumer, ConsumerProtocolType
	cg := g.cg
	now := g.c.now()
	m := cg.members[req.MemberID]
	switch {
	case req.MemberEpoch == -2 && m != nil && m.instanceID != "":
		// A static member leaving for a while (a restart): its place and partitions wait for
		// it for the session timeout, without a rebalance.
		m.departed = true
		m.deadline = now.Add(g.c.cfg.ConsumerSessionTimeout)
		return g.persisted(ConsumerHeartbeatResult{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}, m)
	case req.MemberEpoch < 0:
		if m != nil {
			cg.remove(g, m)
		}
		return g.persisted(ConsumerHeartbeatResult{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}, nil)
	case m == nil && req.MemberEpoch != 0:
		return fail(ErrUnknownMemberID)
	case m == nil:
		var err error
		if m, err = cg.join(req); err != nil {
			return fail(err)
		}
	case req.MemberEpoch == 0:
		// A known member rejoining (it was fenced, or restarted): it owns nothing any more.
		m.assigned, m.revoking, m.lastSent = map[TopicPartition]bool{}, map[TopicPartition]bool{}, ""
		m.assignedAt = map[TopicPartition]int32{}
		m.epoch = 0
	case req.MemberEpoch != m.epoch && !(req.MemberEpoch == m.prevEpoch && req.OwnedSet && subset(req.Owned, m.assigned)):
		return fail(ErrFencedMemberEpoch)
	}
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if req.RackID != "" {
		m.rackID = req.RackID
	}
	if req.RebalanceTimeout > 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	if req.SubscribedTopics != nil && !sameStrings(req.SubscribedTopics, m.subscribed) {
		m.subscribed = sortedCopy(req.SubscribedTopics)
		cg.epoch++
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != m.regex {
		m.regex, m.re = *req.SubscribedRegex, nil
		if m.regex != "" {
			m.re = regexp.MustCompile(m.regex) // checked above
		}
		cg.epoch++
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		cg.epoch++
	}
	m.deadline = now.Add(g.c.cfg.ConsumerSessionTimeout)
	cg.refreshTarget(g)
	cg.reconcile(g, m, req, now)
	g.state = cg.state()
	res := ConsumerHeartbeatResult{MemberID: m.id, MemberEpoch: m.epoch, HeartbeatInterval: g.c.cfg.ConsumerHeartbeatInterval}
	if sig := tpSig(m.assigned); sig != m.lastSent || req.MemberEpoch == 0 || (req.OwnedSet && tpSig(toSet(req.Owned)) != sig) {
		m.lastSent = sig
		res.Assignment, res.AssignmentSet = sortedTPs(m.assigned), true
	}
	return g.persisted(res, m)
}

// persisted records the group's state and has res wait for it (or fail: a retriable
// COORDINATOR_NOT_AVAILABLE; the client heartbeats again and the next write records it).
func (g *group) persisted(res ConsumerHeartbeatResult, m *consumerMember) ConsumerHeartbeatResult {
	w, err := g.persistConsumer(m)
	if err != nil {
		return ConsumerHeartbeatResult{Err: err, MemberID: res.MemberID, MemberEpoch: res.MemberEpoch}
	}
	res.persist = w
	return res
}

// join adds a member. A static member (instance id) whose predecessor departed takes over its
// place, epoch and partitions without a rebalance; one whose predecessor is still active is
// refused (UNRELEASED_INSTANCE_ID), as in Kafka.
func (cg *consumerGroup) join(req ConsumerHeartbeatRequest) (*consumerMember, error) {
	if req.MemberID == "" {
		req.MemberID = newMemberID("")[1:]
	}
	m := &consumerMember{id: req.MemberID, instanceID: req.InstanceID, assigned: map[TopicPartition]bool{}, revoking: map[TopicPartition]bool{},
		assignedAt: map[TopicPartition]int32{}}
	for _, o := range cg.members {
		if req.InstanceID == "" || o.instanceID != req.InstanceID {
			continue
		}
		if !o.departed {
			return nil, fmt.Errorf("%w: instance %s is still held by member %s", ErrUnreleasedInstanceID, req.InstanceID, o.id)
		}
		m.epoch, m.prevEpoch, m.assigned, m.revoking, m.revokeDeadline = o.epoch, o.prevEpoch, o.assigned, o.revoking, o.revokeDeadline
		m.assignedAt = o.assignedAt
		m.subscribed, m.regex, m.re, m.effective = o.subscribed, o.regex, o.re, o.effective
		m.assignor, m.rebalanceTimeout = o.assignor, o.rebalanceTimeout
		cg.target[m.id] = cg.target[o.id]
		delete(cg.target, o.id)
		delete(cg.members, o.id)
		cg.members[m.id] = m
		cg.membersChanged = true
		return m, nil
	}
	cg.members[m.id] = m
	cg.membersChanged = true
	cg.epoch++
	return m, nil
}

// remove drops a member; its partitions become free for the others.
func (cg *consumerGroup) remove(g *group, m *consumerMember) {
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	cg.membersChanged = true
	cg.epoch++
	cg.refreshTarget(g)
	g.state = cg.state()
	if len(cg.members) == 0 {
		g.setEmpty()
	}
}

// refreshTarget recomputes the target assignment when the group epoch moved or a subscribed
// topic's partition count changed.
func (cg *consumerGroup) refreshTarget(g *group) {
	cg.resolveSubscriptions(g)
	counts := map[string]int32{}
	topics := cg.subscribedTopics()
	for _, t := range topics {
		n, _ := g.c.cfg.Topics.Partitions(t)
		counts[t] = n
	}
	if h := hashTopics(topics, counts); h != cg.topicsHash {
		cg.topicsHash = h
		cg.epoch++
	}
	if cg.targetEpoch == cg.epoch {
		return
	}
	cg.assignor = cg.chooseAssignor()
	if cg.assignor == AssignorRange {
		cg.target = assignRange(cg.members, counts)
	} else {
		cg.target = assignUniform(cg.members, counts, cg.target)
	}
	cg.targetEpoch = cg.epoch
}

// resolveSubscriptions sets each member's effective topics: its names plus the matches of
// its regular expression.
func (cg *consumerGroup) resolveSubscriptions(g *group) {
	var names []string
	for _, m := range cg.members {
		m.effective = m.subscribed
		if m.re == nil {
			continue
		}
		if names == nil {
			names = g.c.cfg.Topics.Names()
		}
		set := map[string]bool{}
		for _, t := range m.subscribed {
			set[t] = true
		}
		for _, t := range names {
			if m.re.MatchString(t) {
				set[t] = true
			}
		}
		m.effective = make([]string, 0, len(set))
		for t := range set {
			m.effective = append(m.effective, t)
		}
		sort.Strings(m.effective)
	}
}

func (cg *consumerGroup) subscribedTopics() []string {
	set := map[string]bool{}
	for _, m := range cg.members {
		for _, t := range m.effective {
			set[t] = true
		}
	}
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// chooseAssignor: the one most members ask for, "uniform" by default (as Kafka).
func (cg *consumerGroup) chooseAssignor() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	if votes[AssignorRange] > votes[AssignorUniform] {
		return AssignorRange
	}
	return AssignorUniform
}

// reconcile moves m toward its target: first revoke, then (once the member acknowledged the
// revocation) take the new epoch and the partitions no one else still holds.
func (cg *consumerGroup) reconcile(g *group, m *consumerMember, req ConsumerHeartbeatRequest, now time.Time) {
	if len(m.revoking) > 0 {
		if !req.OwnedSet || intersects(req.Owned, m.revoking) {
			return // still waiting for the member to let go
		}
		m.revoking = map[TopicPartition]bool{}
	}
	target := cg.target[m.id]
	for tp := range m.assigned {
		if !target[tp] {
			m.revoking[tp] = true
		}
	}
	if len(m.revoking) > 0 {
		for tp := range m.revoking {
			delete(m.assigned, tp)
			delete(m.assignedAt, tp)
		}
		m.revokeDeadline = now.Add(max(m.rebalanceTimeout, time.Second))
		return
	}
	held := map[TopicPartition]bool{}
	for _, o := range cg.members {
		if o == m {
			continue
		}
		for tp := range o.assigned {
			held[tp] = true
		}
		for tp := range o.revoking {
			held[tp] = true
		}
	}
	for tp := range target {
		if !held[tp] && !m.assigned[tp] {
			m.assigned[tp] = true
			m.assignedAt[tp] = cg.targetEpoch // the epoch the member has once this returns
		}
	}
	if m.epoch != cg.targetEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.targetEpoch
	}
}

func (cg *consumerGroup) state() State {
	if len(cg.members) == 0 {
		return StateEmpty
	}
	for _, m := range cg.members {
		if m.epoch != cg.targetEpoch || len(m.revoking) > 0 || len(m.assigned) != len(cg.target[m.id]) {
			return StateReconciling
		}
	}
	return StateStable
}

// expire removes members whose session ended or that did not revoke in time.
func (cg *consumerGroup) expire(g *group, now time.Time) {
	removed := false
	for _, m := range cg.members {
		late := len(m.revoking) > 0 && !m.revokeDeadline.IsZero() && !now.Before(m.revokeDeadline)
		if !now.Before(m.deadline) || late {
			g.c.log.Info("consumer group member removed", "group", g.id, "member", m.id, "revocation_timeout", late)
			cg.remove(g, m)
			removed = true
		}
	}
	if removed {
		_, _ = g.persistConsumer(nil) // logged; no one waits (the next change writes it again)
	}
}

func (cg *consumerGroup) validateCommit(req CommitRequest) error {
	if req.Generation < 0 && req.MemberID == "" {
		return ErrUnknownMemberID // admin commits need an empty group
	}
	m := cg.members[req.MemberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	if req.Generation != m.epoch && !(req.Generation < m.epoch && m.ownedSince(req.Offsets, req.Generation)) {
		return ErrStaleMemberEpoch
	}
	return nil
}

// ownedSince reports whether the member holds every partition of offs and has held each since
// epoch or before: then a commit at that older epoch is still the member's to make, as Kafka
// accepts it since KIP-1251 (a consumer's commit crossing an epoch bump that only added
// partitions, which franz-go's consumers would otherwise see fail). m's group goroutine.
func (m *consumerMember) ownedSince(offs map[TopicPartition]OffsetValue, epoch int32) bool {
	if len(offs) == 0 {
		return false
	}
	for tp := range offs {
		at, ok := m.assignedAt[tp]
		if !m.assigned[tp] || !ok || at > epoch {
			return false
		}
	}
	return true
}

// describeClassic presents a consumer group to DescribeGroups as Kafka does: protocol type
// "consumer", each member's assignment in ConsumerProtocol bytes.
func (cg *consumerGroup) describeClassic(g *group) GroupDescription {
	d := GroupDescription{Group: g.id, State: g.state, Type: TypeConsumer, ProtocolType: ConsumerProtocolType, Protocol: cg.assignor}
	for _, m := range cg.sortedMembers() {
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Version, meta.Topics = 3, m.effective
		d.Members = append(d.Members, MemberDescription{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Metadata: meta.AppendTo(nil), Assignment: encodeConsumerAssignment(m.assigned),
		})
	}
	return d
}

func encodeConsumerAssignment(set map[TopicPartition]bool) []byte {
	a := kmsg.NewConsumerMemberAssignment()
	a.Version = 3
	for _, tp := range sortedTPs(set) {
		if n := len(a.Topics); n == 0 || a.Topics[n-1].Topic != tp.Topic {
			a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: tp.Topic})
		}
		t := &a.Topics[len(a.Topics)-1]
		t.Partitions = append(t.Partitions, tp.Partition)
	}
	return a.AppendTo(nil)
}

func (cg *consumerGroup) sortedMembers() []*consumerMember {
	out := make([]*consumerMember, 0, len(cg.members))
	for _, m := range cg.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// DescribeConsumerGroup answers ConsumerGroupDescribe: ErrGroupIDNotFound for unknown and
// classic groups (the Java admin client then falls back to DescribeGroups).
func (c *Coordinator) DescribeConsumerGroup(ctx context.Context, id string) (ConsumerGroupDescription, error) {
	g, err := c.lookup(id, false)
	if err != nil {
		return ConsumerGroupDescription{}, err
	}
	if g == nil {
		return ConsumerGroupDescription{}, fmt.Errorf("%w: group %s not found", ErrGroupIDNotFound, id)
	}
	type res struct {
		d  ConsumerGroupDescription
		ok bool
	}
	r, err := call(ctx, g, func() res {
		if g.dead || g.cg == nil || g.typ != TypeConsumer {
			return res{}
		}
		cg := g.cg
		d := ConsumerGroupDescription{Group: g.id, State: g.state, Epoch: cg.epoch, AssignmentEpoch: cg.targetEpoch, Assignor: cg.assignor}
		for _, m := range cg.sortedMembers() {
			d.Members = append(d.Members, ConsumerMemberDescription{
				MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.clientHost,
				MemberEpoch: m.epoch, Subscribed: m.subscribed, SubscribedRegex: m.regex, Assigned: sortedTPs(m.assigned), Target: sortedTPs(cg.target[m.id]),
			})
		}
		return res{d, true}
	})
	if err != nil {
		return ConsumerGroupDescription{}, err
	}
	if !r.ok {
		return ConsumerGroupDescription{}, fmt.Errorf("%w: group %s is not a consumer group", ErrGroupIDNotFound, id)
	}
	return r.d, nil
}

// assignRange gives each member, per topic, a contiguous range of the partitions, members of
// the topic ordered by id, the first ones one partition more when it does not divide.
func assignRange(members map[string]*consumerMember, counts map[string]int32) map[string]map[TopicPartition]bool {
	out := map[string]map[TopicPartition]bool{}
	for id := range members {
		out[id] = map[TopicPartition]bool{}
	}
	for topic, n := range counts {
		var subs []string
		for id, m := range members {
			if contains(m.effective, topic) {
				subs = append(subs, id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		sort.Strings(subs)
		per, extra := int(n)/len(subs), int(n)%len(subs)
		p := 0
		for i, id := range subs {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id][TopicPartition{topic, int32(p)}] = true
				p++
			}
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions evenly over the members, keeping each
// partition where it was in the previous target while that stays balanced (sticky).
func assignUniform(members map[string]*consumerMember, counts map[string]int32, prev map[string]map[TopicPartition]bool) map[string]map[TopicPartition]bool {
	out := map[string]map[TopicPartition]bool{}
	ids := make([]string, 0, len(members))
	for id := range members {
		out[id] = map[TopicPartition]bool{}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	// Topics with fewer subscribers first: they have fewer places to go, and the others can
	// then even the counts out.
	subs := map[string]int{}
	for _, m := range members {
		for _, t := range m.effective {
			subs[t]++
		}
	}
	var all []TopicPartition
	for topic, n := range counts {
		for p := int32(0); p < n; p++ {
			all = append(all, TopicPartition{topic, p})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if subs[a.Topic] != subs[b.Topic] {
			return subs[a.Topic] < subs[b.Topic]
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if len(ids) == 0 {
		return out
	}
	quota := (len(all) + len(ids) - 1) / len(ids)
	owner := map[TopicPartition]string{}
	for id, set := range prev {
		if members[id] == nil {
			continue
		}
		for tp := range set {
			if contains(members[id].effective, tp.Topic) && len(out[id]) < quota && tp.Partition < counts[tp.Topic] {
				out[id][tp] = true
				owner[tp] = id
			}
		}
	}
	for _, tp := range all {
		if _, ok := owner[tp]; ok {
			continue
		}
		best := ""
		for _, id := range ids {
			if !contains(members[id].effective, tp.Topic) {
				continue
			}
			if best == "" || len(out[id]) < len(out[best]) {
				best = id
			}
		}
		if best != "" {
			out[best][tp] = true
			owner[tp] = best
		}
	}
	return out
}

func subset(tps []TopicPartition, set map[TopicPartition]bool) bool {
	for _, tp := range tps {
		if !set[tp] {
			return false
		}
	}
	return true
}

func intersects(tps []TopicPartition, set map[TopicPartition]bool) bool {
	for _, tp := range tps {
		if set[tp] {
			return true
		}
	}
	return false
}

func toSet(tps []TopicPartition) map[TopicPartition]bool {
	m := make(map[TopicPartition]bool, len(tps))
	for _, tp := range tps {
		m[tp] = true
	}
	return m
}

func sortedTPs(set map[TopicPartition]bool) []TopicPartition {
	out := make([]TopicPartition, 0, len(set))
	for tp := range set {
		out = append(out, tp)
	}
	sortTPs(out)
	return out
}

func tpSig(set map[TopicPartition]bool) string {
	var b strings.Builder
	for _, tp := range sortedTPs(set) {
		fmt.Fprintf(&b, "%s/%d,", tp.Topic, tp.Partition)
	}
	return b.String()
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func sameStrings(a, b []string) bool {
	a = sortedCopy(a)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
