package vhost

// Stream queues (x-queue-type=stream): an append-only queue that IS the Kafka topic of the
// same name, with all of its partitions, through the topic manager the Kafka front end uses
// (Config.Streams). A stream declared over AMQP gets x-stream-partitions partitions (default
// 1); a topic created by Kafka keeps its own count, and partitions added later are used too.
// This file attaches a stream queue to its topic; the front end publishes and consumes.
//
// A publish appends one record to the partition Kafka's default partitioner picks for the
// routing key (PartitionFor: murmur2, so Kafka consumers find each key where they expect
// it); an empty routing key goes round-robin. Consumers read every partition, or the one
// they name, without removing anything.

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/yardmq/yard/internal/murmur2"
	"github.com/yardmq/yard/internal/stream"
)

// Stream is the topic behind a stream queue. The topic's partition list is read afresh
// on every publish and by consumers, so partitions added by Kafka's CreatePartitions are used
// without redeclaring anything.
type Stream struct {
	topic *stream.Topic
	next  atomic.Uint32 // round-robin position for publishes without a routing key
}

// Topic is the stream's topic.
func (sq *Stream) Topic() *stream.Topic { return sq.topic }

// PartitionFor picks the partition a publish with this routing key goes to.
func (sq *Stream) PartitionFor(routingKey string) *stream.Partition {
	parts := sq.topic.Partitions()
	n := int32(len(parts))
	switch {
	case n == 0:
		panic("BUG: stream topic " + sq.topic.Name + " has no partitions")
	case n == 1:
		return parts[0]
	case routingKey == "":
		return parts[(sq.next.Add(1)-1)%uint32(n)]
	}
	return parts[murmur2.Partition([]byte(routingKey), n)]
}

func isStreamArgs(args map[string]any) bool { return queueType(args) == queueTypeStream }

// attachStream finds or creates the topic behind a stream queue. An existing topic is used
// with whatever partitions it has, unless the declaration asks for more than that: partitions
// are added with Kafka's CreatePartitions, never implicitly, because adding them moves keys.
func (h *Hosts) attachStream(name string, args map[string]any) (*Stream, error) {
	if h.cfg.Streams == nil {
		return nil, errors.New("stream queues need the topic manager, which this server was not given")
	}
	want, explicit, err := streamPartitionsArg(args)
	if err != nil {
		return nil, err
	}
	t, ok := h.cfg.Streams.Topic(name)
	if !ok {
		cfg, err := streamTopicConfigs(args)
		if err != nil {
			return nil, err
		}
		// Every node holds a stream queue's partitions: AMQP publishes and consumes on the
		// node the client is connected to.
		all := stream.Placement{ReplicationFactor: h.cfg.Streams.Node().ClusterSize()}
		t, err = h.cfg.Streams.CreatePlacedTopic(name, want, all, cfg, false)
		if errors.Is(err, stream.ErrTopicExists) {
			t, ok = h.cfg.Streams.Topic(name)
			if !ok {
				return nil, fmt.Errorf("cannot open topic %q: %w", name, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("cannot create topic %q: %w", name, err)
		}
	}
	if n := t.NumPartitions(); explicit && n < want {
		return nil, fmt.Errorf("topic %q has %d partitions, fewer than x-stream-partitions %d (add partitions with Kafka's CreatePartitions)", name, n, want)
	}
	return &Stream{topic: t}, nil
}
