package group

import "github.com/yardmq/yard/internal/stream"

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

func (s streamTopics) Names() []string {
	ts := s.m.Topics()
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}
