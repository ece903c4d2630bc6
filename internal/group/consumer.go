package group

import "time"

// consumerGroup is the KIP-848 state of a group (ConsumerGroupHeartbeat members).
type consumerGroup struct {
	members map[string]*consumerMember
}

// consumerMember is a KIP-848 member.
type consumerMember struct {
	id         string
	instanceID string
	clientID   string
	clientHost string
	subscribed []string
	assigned   map[TopicPartition]bool
	deadline   time.Time
}

func (cg *consumerGroup) expire(g *group, now time.Time) {}

func (cg *consumerGroup) validateCommit(req CommitRequest) error { return ErrUnknownMemberID }

func (cg *consumerGroup) describeClassic(g *group) GroupDescription {
	return GroupDescription{Group: g.id, State: g.state, Type: TypeConsumer, ProtocolType: ConsumerProtocolType}
}
