package group

// Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and their expiry.

import (
	"context"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"
)

// Commit validates req against its group and makes the offsets durable. The map holds a
// per-partition error (nil = committed); the error fails the whole request.
func (c *Coordinator) Commit(ctx context.Context, req CommitRequest) (map[TopicPartition]error, error) {
	if req.Group == "" {
		return nil, ErrInvalidGroupID
	}
	simple := req.Generation < 0 && req.MemberID == "" && req.InstanceID == ""
	g, err := c.lookup(req.Group, simple)
	if err != nil {
		return nil, err
	}
	if g == nil {
		if c.offsets.hasGroup(req.Group) {
			// The group exists, empty, by its committed offsets: yard keeps no members across
			// a restart, so a member of the generation before it is unknown, as in an empty
			// Kafka group. It rejoins on this error; on GROUP_ID_NOT_FOUND the Java client
			// gives up (and a Kafka Streams thread dies).
			return nil, ErrUnknownMemberID
		}
		return nil, ErrGroupIDNotFound
	}
	verr, err := call(ctx, g, func() error { return g.validateCommit(req) })
	if err != nil {
		return nil, err
	}
	if verr != nil {
		return nil, verr
	}
	out := make(map[TopicPartition]error, len(req.Offsets))
	ok := make(map[TopicPartition]OffsetValue, len(req.Offsets))
	nowMs := c.now().UnixMilli()
	for tp, v := range req.Offsets {
		n, exists := c.cfg.Topics.Partitions(tp.Topic)
		switch {
		case !exists || tp.Partition < 0 || tp.Partition >= n:
			out[tp] = ErrUnknownTopicOrPartition
		case len(v.Metadata) > c.cfg.MaxMetadataBytes || len(tp.Topic) > maxStringLen || !utf8.ValidString(v.Metadata):
			out[tp] = ErrOffsetMetadataTooLarge
		default:
			v.CommitMs = nowMs
			ok[tp] = v
			out[tp] = nil
		}
	}
	if err := c.offsets.commit(ctx, req.Group, ok); err != nil {
		c.rl.Warn("cannot commit offsets", "cannot commit offsets", "group", req.Group, "err", err)
		for tp := range ok {
			out[tp] = err
		}
	}
	return out, nil
}

func (g *group) validateCommit(req CommitRequest) error {
	if g.dead {
		return ErrCoordinatorNotAvailable
	}
	if g.cg != nil && len(g.cg.members) > 0 {
		return g.cg.validateCommit(req)
	}
	if req.Generation < 0 && g.state == StateEmpty {
		return nil // admin tools and manually assigned consumers
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "" {
		if _, err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return err
		}
		if req.Generation != g.generation {
			return ErrIllegalGeneration
		}
	} else if g.state != StateEmpty {
		return ErrUnknownMemberID
	}
	if g.state == StateCompletingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// FetchOffsets returns the committed offsets of group for tps (offset -1 where none is), or
// every committed offset of the group when tps is nil. An unknown group has none.
func (c *Coordinator) FetchOffsets(group string, tps []TopicPartition) []FetchedOffset {
	return c.offsets.fetch(group, tps)
}

// DeleteOffsets is OffsetDelete: it removes the committed offsets of tps unless the group is
// subscribed to their topic.
func (c *Coordinator) DeleteOffsets(ctx context.Context, groupID string, tps []TopicPartition) (map[TopicPartition]error, error) {
	g, err := c.lookup(groupID, false)
	if err != nil {
		return nil, err
	}
	var subscribed map[string]bool
	if g != nil {
		type res struct {
			topics map[string]bool
			err    error
		}
		r, err := call(ctx, g, func() res { t, err := g.subscribedTopics(); return res{t, err} })
		if err != nil {
			return nil, err
		}
		if r.err != nil {
			return nil, r.err
		}
		subscribed = r.topics
	} else if !c.offsets.hasGroup(groupID) {
		return nil, ErrGroupIDNotFound
	}
	out := make(map[TopicPartition]error, len(tps))
	var del []TopicPartition
	for _, tp := range tps {
		if _, ok := c.cfg.Topics.Partitions(tp.Topic); !ok {
			out[tp] = ErrUnknownTopicOrPartition
			continue
		}
		if subscribed[tp.Topic] {
			out[tp] = ErrGroupSubscribedToTopic
			continue
		}
		out[tp] = nil
		del = append(del, tp)
	}
	if len(del) > 0 {
		if err := c.offsets.deleteOffsets(ctx, groupID, del); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// expireOffsets drops the offsets of empty groups older than the retention: for a group
// that had members, counted from when it became empty; for one that never had (or that we
// only know from the log after a restart), from each offset's commit time.
func (c *Coordinator) expireOffsets(ctx context.Context) {
	now := c.now()
	retention := c.cfg.OffsetsRetention
	for _, name := range c.offsets.groupNames() {
		var since time.Time
		g, _ := c.lookup(name, false)
		if g != nil {
			type info struct {
				empty bool
				since time.Time
			}
			r, err := call(ctx, g, func() info {
				e := g.state == StateEmpty && g.isEmpty()
				if g.protocolType == "" && g.typ == TypeClassic {
					return info{e, time.Time{}}
				}
				return info{e, g.emptySince}
			})
			if err != nil || !r.empty {
				continue
			}
			since = r.since
		}
		var expired []TopicPartition
		for _, f := range c.offsets.fetch(name, nil) {
			ref := time.UnixMilli(f.CommitMs)
			if !since.IsZero() {
				ref = since
			}
			if !now.Before(ref.Add(retention)) {
				expired = append(expired, f.TopicPartition)
			}
		}
		if len(expired) > 0 {
			if err := c.offsets.deleteOffsets(ctx, name, expired); err != nil {
				c.log.Warn("cannot expire offsets", "group", name, "err", err)
				continue
			}
			c.log.Info("committed offsets expired", "group", name, "partitions", len(expired))
		}
		// As Kafka: an empty group left without offsets is dead; its metadata gets a tombstone.
		if !c.offsets.hasOffsets(name) && c.offsets.hasGroupRecords(name) {
			if err := c.offsets.deleteGroup(ctx, name); err != nil {
				c.log.Warn("cannot remove the metadata of an empty group", "group", name, "err", err)
			}
		}
	}
}

// dropIdleGroups ends the goroutines of groups with no members and no offsets.
func (c *Coordinator) dropIdleGroups(ctx context.Context) {
	for _, g := range c.groupList() {
		_, _ = call(ctx, g, func() bool {
			if g.state == StateEmpty && g.isEmpty() && len(g.pending) == 0 && !c.offsets.hasGroup(g.id) {
				g.dead, g.state = true, StateDead
				return true
			}
			return false
		})
	}
}

func (c *Coordinator) maintenanceLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.stop
		cancel()
	}()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.maintain(ctx)
		}
	}
}

// maintain runs one round of expiry and idle-group removal (the log cleaner compacts
// __consumer_offsets).
func (c *Coordinator) maintain(ctx context.Context) {
	c.expireOffsets(ctx)
	c.dropIdleGroups(ctx)
}

// sortTPs orders partitions by topic, then partition.
func sortTPs(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

// String is "topic-partition", as Kafka prints partitions.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }
