package amqp

// Stream queues (x-queue-type=stream): an append-only queue that IS the Kafka topic of the
// same name, with all of its partitions, through the topic manager the Kafka front end uses
// (Config.Streams). A stream declared over AMQP gets x-stream-partitions partitions (default
// 1); a topic created by Kafka keeps its own count, and partitions added later are used too.
//
// Publishing appends one record (streamrec.go) to the partition Kafka's default partitioner
// picks for the routing key (murmur2, so Kafka consumers find each key where they expect it);
// an empty routing key goes round-robin. The publish is confirmed once that partition has it
// durably. Consuming (stream_consume.go) reads every partition, or the one named by the
// consumer's x-stream-partition, from its x-stream-offset without removing anything, and can
// filter on x-stream-filter-value (stream_filter.go); acks only return prefetch credit, which
// is mandatory as in RabbitMQ.

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/murmur2"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
)

// streamQueue is the topic behind a stream queue. The topic's partition list is read afresh
// on every publish and by consumers, so partitions added by Kafka's CreatePartitions are used
// without redeclaring anything.
type streamQueue struct {
	topic *stream.Topic
	next  atomic.Uint32 // round-robin position for publishes without a routing key
}

// partitionFor picks the partition a publish with this routing key goes to.
func (sq *streamQueue) partitionFor(routingKey string) *stream.Partition {
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

func isStreamArgs(args map[string]any) bool {
	s, _ := args["x-queue-type"].(string)
	return s == "stream"
}

// streamTopicConfigs maps RabbitMQ's stream arguments to the topic's configs:
// x-max-length-bytes to retention.bytes, x-max-age ("7D", "12h", "30m", "20s"; Y and M are
// 365 and 30 days) to retention.ms, x-stream-max-segment-size-bytes to segment.bytes. Without
// them the topic gets Kafka's defaults (7 days of retention).
func streamTopicConfigs(args map[string]any) (map[string]string, error) {
	cfg := map[string]string{}
	if v, ok := args["x-max-length-bytes"]; ok {
		n, ok := intArg(v)
		if !ok || n < 0 {
			return nil, errors.New("invalid arg 'x-max-length-bytes': must be a non-negative integer")
		}
		cfg["retention.bytes"] = strconv.Itoa(n)
	}
	if v, ok := args["x-stream-max-segment-size-bytes"]; ok {
		n, ok := intArg(v)
		if !ok || n < 1 {
			return nil, errors.New("invalid arg 'x-stream-max-segment-size-bytes': must be a positive integer")
		}
		cfg["segment.bytes"] = strconv.Itoa(n)
	}
	if v, ok := args["x-max-age"]; ok {
		ms, err := parseMaxAge(v)
		if err != nil {
			return nil, err
		}
		cfg["retention.ms"] = strconv.FormatInt(ms, 10)
	}
	return cfg, nil
}

func parseMaxAge(v any) (int64, error) {
	bad := fmt.Errorf("invalid arg 'x-max-age': %v (want a number and a unit of Y, M, D, h, m or s, e.g. 7D)", v)
	str, ok := v.(string)
	if !ok || len(str) < 2 {
		return 0, bad
	}
	n, err := strconv.ParseInt(str[:len(str)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, bad
	}
	unit := map[byte]int64{'Y': 365 * 86400e3, 'M': 30 * 86400e3, 'D': 86400e3, 'h': 3600e3, 'm': 60e3, 's': 1e3}[str[len(str)-1]]
	if unit == 0 {
		return 0, bad
	}
	return n * unit, nil
}

// streamPartitionsArg is x-stream-partitions: how many partitions a stream declared over AMQP
// gets (default 1).
func streamPartitionsArg(args map[string]any) (int32, bool, error) {
	v, ok := args["x-stream-partitions"]
	if !ok {
		return 1, false, nil
	}
	n, ok := intArg(v)
	if !ok || n < 1 || n > stream.MaxPartitionsPerTopic {
		return 0, false, fmt.Errorf("invalid arg 'x-stream-partitions': %v (must be an integer from 1 to %d)", v, stream.MaxPartitionsPerTopic)
	}
	return int32(n), true, nil
}

// attachStream finds or creates the topic behind a stream queue. An existing topic is used
// with whatever partitions it has, unless the declaration asks for more than that: partitions
// are added with Kafka's CreatePartitions, never implicitly, because adding them moves keys.
func (s *Server) attachStream(name string, args map[string]any) (*streamQueue, error) {
	if s.cfg.Streams == nil {
		return nil, errors.New("stream queues need the topic manager, which this server was not given")
	}
	want, explicit, err := streamPartitionsArg(args)
	if err != nil {
		return nil, err
	}
	t, ok := s.cfg.Streams.Topic(name)
	if !ok {
		cfg, err := streamTopicConfigs(args)
		if err != nil {
			return nil, err
		}
		t, err = s.cfg.Streams.CreateTopic(name, want, cfg, false)
		if errors.Is(err, stream.ErrTopicExists) {
			t, ok = s.cfg.Streams.Topic(name)
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
	return &streamQueue{topic: t}, nil
}

// declareStreamChecks validates a stream queue declaration as RabbitMQ does.
func (ch *channel) declareStreamChecks(m *wire.QueueDeclare) *amqpError {
	switch {
	case !m.Durable:
		return channelErr(wire.PreconditionFailed, m, "invalid property 'non-durable' for queue '%s' in vhost '%s'", m.Queue, ch.vhostName())
	case m.Exclusive:
		return channelErr(wire.PreconditionFailed, m, "invalid property 'exclusive-owner' for queue '%s' in vhost '%s'", m.Queue, ch.vhostName())
	case m.AutoDelete:
		return channelErr(wire.PreconditionFailed, m, "invalid property 'auto-delete' for queue '%s' in vhost '%s'", m.Queue, ch.vhostName())
	}
	return nil
}

// publishStream appends one message to a stream queue.
func (ch *channel) publishStream(qs *queueState, routingKey string, props, body []byte) (queue.Waiter, error) {
	part := qs.stream.partitionFor(routingKey)
	b := appendStreamBatch(nil, time.Now().UnixMilli(), routingKey, props, body)
	res, err := part.Append(b)
	if err != nil {
		return queue.Waiter{}, err
	}
	return queue.NewWaiter(part.Log(), res.LastOffset), nil
}
