package group

import (
	"fmt"

	"github.com/yardmq/yard/internal/stream"
)

// streamTopics answers Topics from a stream.Manager.
type streamTopics struct{ m *stream.Manager }

// StreamTopics adapts the stream layer to Topics.
func StreamTopics(m *stream.Manager) Topics { return streamTopics{m} }

func (s streamTopics) Partitions(topic string) (int32, bool) {
	t, ok := s.m.Topic(topic)
	if !ok {
		return 0, false
	}
	return t.NumPartitions(), true
}

func (s streamTopics) EndOffset(topic string, partition int32) (int64, bool) {
	t, ok := s.m.Topic(topic)
	if !ok {
		return 0, false
	}
	p := t.Partition(partition)
	if p == nil {
		return 0, false
	}
	return p.HighWatermark(), true
}

// Names lists every topic, internal ones too: a KIP-848 regular expression is matched against
// all of them, as Kafka 4.4 does (franz-go's Test848RegexBrokerResolves subscribes to
// __consumer_offsets by regex and expects it assigned). Clients exclude internal topics from
// the regular expressions they evaluate themselves (classic groups).
func (s streamTopics) Names() []string {
	ts := s.m.Topics()
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

// StreamOffsetsPartitions returns the partitions of __consumer_offsets in m, creating the
// internal topic with n partitions (and OffsetsTopicConfigs) if it does not exist yet.
func StreamOffsetsPartitions(m *stream.Manager, n int32) ([]OffsetsPartition, error) {
	t, err := m.EnsureInternalTopic(OffsetsTopic, n, OffsetsTopicConfigs())
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", OffsetsTopic, err)
	}
	ps := t.Partitions()
	out := make([]OffsetsPartition, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out, nil
}

// TopicID is the topic's Kafka topic id (TopicIDs).
func (s streamTopics) TopicID(name string) ([16]byte, bool) {
	t, ok := s.m.Topic(name)
	if !ok {
		return [16]byte{}, false
	}
	return t.ID, true
}

// TopicName is the name of the topic with the id (TopicIDs).
func (s streamTopics) TopicName(id [16]byte) (string, bool) {
	t, ok := s.m.TopicByID(id)
	if !ok {
		return "", false
	}
	return t.Name, true
}
