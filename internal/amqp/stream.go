package amqp

// Stream queues (x-queue-type=stream): an append-only queue that IS the Kafka topic of the
// same name (one partition), through the topic manager the Kafka front end uses
// (Config.Streams). Publishing appends a record (streamrec.go) and is confirmed once durable;
// consuming reads the log from the consumer's x-stream-offset (first, last, next, an offset,
// or a timestamp) without removing anything; acks only return prefetch credit, which is
// mandatory as in RabbitMQ. Each consumer is one goroutine that reads batches from the log and
// hands deliveries to the channel while the consumer has room, and otherwise waits for an ack
// (chConsumer.stream.wake), new data (log.Changed) or cancellation.

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
)

const (
	streamReadBytes = 1 << 20
	// streamRoomPoll bounds how long a stream consumer that found no room (socket backlog)
	// waits before retrying when no ack wakes it.
	streamRoomPoll = 50 * time.Millisecond
)

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

// attachStream finds or creates the topic behind a stream queue.
func (s *Server) attachStream(name string, args map[string]any) (*stream.Partition, error) {
	if s.cfg.Streams == nil {
		return nil, errors.New("stream queues need the topic manager, which this server was not given")
	}
	t, ok := s.cfg.Streams.Topic(name)
	if !ok {
		cfg, err := streamTopicConfigs(args)
		if err != nil {
			return nil, err
		}
		t, err = s.cfg.Streams.CreateTopic(name, 1, cfg, false)
		if errors.Is(err, stream.ErrTopicExists) {
			t, ok = s.cfg.Streams.Topic(name)
			if !ok {
				return nil, fmt.Errorf("cannot open topic %q: %w", name, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("cannot create topic %q: %w", name, err)
		}
	}
	if t.NumPartitions() != 1 {
		return nil, fmt.Errorf("topic %q has %d partitions; a stream queue is a single-partition topic", name, t.NumPartitions())
	}
	return t.Partition(0), nil
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
	b := appendStreamBatch(nil, time.Now().UnixMilli(), routingKey, props, body)
	res, err := qs.stream.Append(b)
	if err != nil {
		return queue.Waiter{}, err
	}
	return queue.NewWaiter(qs.stream.Log(), res.LastOffset), nil
}

// streamCursor is a stream consumer's position and its goroutine's signals.
type streamCursor struct {
	part *stream.Partition
	next int64
	wake chan struct{} // an ack returned credit
	stop chan struct{}
	once sync.Once
}

func (sc *streamCursor) close() { sc.once.Do(func() { close(sc.stop) }) }

func (sc *streamCursor) signal() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// startOffset resolves x-stream-offset against the log.
func startOffset(l *log.Log, spec any) (int64, error) {
	// Positions are resolved against the log end (what was written, even if not yet durable):
	// the consumer then waits for the high watermark to pass them.
	start, hw := l.StartOffset(), l.EndOffset()
	switch v := spec.(type) {
	case nil:
		return hw, nil
	case string:
		switch v {
		case "first":
			return start, nil
		case "last":
			return max(start, hw-1), nil
		case "next":
			return hw, nil
		}
		return 0, fmt.Errorf("unknown x-stream-offset %q (want first, last, next, an offset or a timestamp)", v)
	case time.Time:
		off, err := l.OffsetForTimestamp(v.UnixMilli())
		if err != nil || off < 0 {
			return hw, nil
		}
		return max(off, start), nil
	}
	if n, ok := intArg(spec); ok {
		return min(max(int64(n), start), hw), nil
	}
	return 0, fmt.Errorf("x-stream-offset of type %T not understood", spec)
}

func (ch *channel) consumeStream(m *wire.BasicConsume, qs *queueState) error {
	if m.NoAck {
		return channelErr(wire.PreconditionFailed, m, "stream queue '%s' in vhost '%s' requires manual acknowledgements (no-ack=false)", qs.q.Name(), ch.vhostName())
	}
	ch.mu.Lock()
	prefetch := ch.prefetch
	ch.mu.Unlock()
	if prefetch <= 0 {
		return channelErr(wire.PreconditionFailed, m, "consumer prefetch count is not set for stream queue '%s' in vhost '%s'", qs.q.Name(), ch.vhostName())
	}
	next, err := startOffset(qs.stream.Log(), m.Arguments["x-stream-offset"])
	if err != nil {
		return channelErr(wire.PreconditionFailed, m, "%v", err)
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverNamed("amq.ctag-")
	}
	sc := &streamCursor{part: qs.stream, next: next, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return connErr(wire.NotAllowed, m, "attempt to reuse consumer tag '%s'", tag)
	}
	cons := &chConsumer{ch: ch, tag: tag, qs: qs, prefetch: prefetch, stream: sc}
	ch.consumers[tag] = cons
	ch.mu.Unlock()
	// Registered with the (always empty) queue too, so that exclusive consumers and the
	// cancel notification on queue deletion work as for any queue.
	priority, _ := intArg(m.Arguments["x-priority"])
	if err := qs.q.Consume(queue.ConsumerSpec{Tag: tag, Exclusive: m.Exclusive, Priority: priority, Consumer: cons}); err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return channelErr(wire.AccessRefused, m, "queue '%s' in vhost '%s' in exclusive use", m.Queue, ch.vhostName())
	}
	ch.c.trackConsumer(qs.q, 1)
	ch.replyUnlessNowait(m.Nowait, &wire.BasicConsumeOk{ConsumerTag: tag})
	ch.mu.Lock()
	cons.active = true
	ch.mu.Unlock()
	go cons.runStream()
	return nil
}

// runStream is a stream consumer's goroutine.
func (cons *chConsumer) runStream() {
	sc := cons.stream
	l := sc.part.Log()
	dec := kgo.DefaultDecompressor()
	var buf []byte
	for {
		changed := l.Changed()
		if sc.next < l.StartOffset() {
			sc.next = l.StartOffset() // retention removed what we had not read yet
		}
		if sc.next >= l.HighWatermark() {
			select {
			case <-changed:
				continue
			case <-sc.stop:
				return
			}
		}
		rr, err := l.Read(sc.next, streamReadBytes)
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			continue
		}
		if err != nil {
			cons.ch.c.log.Warn("cannot read stream", "queue", cons.qs.q.Name(), "err", err)
			return
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			cons.ch.c.log.Warn("cannot read stream", "queue", cons.qs.q.Name(), "err", err)
			return
		}
		stopped := false
		err = parseStreamBatches(buf, dec, func(r *streamRecord) bool {
			if r.offset < sc.next {
				return true
			}
			msg := &queue.Message{RoutingKey: string(r.key), Properties: deliveryProperties(r), Body: append([]byte(nil), r.value...)}
			for !cons.TryDeliver(queue.Delivery{Queue: cons.qs.q, ID: uint64(r.offset), Message: msg, ConsumerTag: cons.tag}) {
				if !cons.waitRoom() {
					stopped = true
					return false
				}
			}
			sc.next = r.offset + 1
			return true
		})
		if stopped {
			return
		}
		if err != nil {
			cons.ch.c.log.Warn("cannot decode stream", "queue", cons.qs.q.Name(), "offset", sc.next, "err", err)
			return
		}
	}
}

// waitRoom waits until the consumer may have room again; false once it is cancelled.
func (cons *chConsumer) waitRoom() bool {
	cons.ch.mu.Lock()
	gone := !cons.active || cons.ch.released
	cons.ch.mu.Unlock()
	if gone {
		return false
	}
	t := time.NewTimer(streamRoomPoll)
	defer t.Stop()
	select {
	case <-cons.stream.wake:
	case <-t.C:
	case <-cons.stream.stop:
		return false
	}
	return true
}
