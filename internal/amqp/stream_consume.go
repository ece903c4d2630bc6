package amqp

// Stream consumers. Each consumer is one goroutine (runStream) that owns a cursor per
// partition it reads. It visits the partitions in turn, each time reading a bounded run of
// whole batches from one partition and handing its records to the channel in offset order, so
// every partition (and so every key) is delivered in order and a busy partition cannot starve
// the others: partitions are interleaved round-robin by read. When the consumer has no prefetch
// room it waits for an ack (streamCursor.wake); when every partition is read to its high
// watermark it waits for any of them to grow (stream.Changes), for cancellation, or for the
// periodic check that picks up partitions added to the topic since.
//
// x-stream-offset applies to each partition: first, last, next and a timestamp are resolved
// per partition; a numeric offset only means something within one partition, so on a
// multi-partition stream it needs x-stream-partition. Partitions that appear while a consumer
// runs (Kafka's CreatePartitions) are read from their beginning, since everything in them was
// written after the consumer started.

import (
	"fmt"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

const (
	// streamReadBytes is one read of a single-partition stream; with several partitions each
	// turn reads streamReadBytes/n, but at least streamMinReadBytes (a read always returns at
	// least one whole batch).
	streamReadBytes    = 1 << 20
	streamMinReadBytes = 64 << 10
	// streamRoomPoll bounds how long a stream consumer that found no room (socket backlog)
	// waits before retrying when no ack wakes it.
	streamRoomPoll = 50 * time.Millisecond
	// streamPartitionPoll is how often an idle consumer looks for partitions added to its
	// topic (the topic has no notification for that).
	streamPartitionPoll = time.Second
)

// streamCursor is a stream consumer's positions and its goroutine's signals. parts is owned
// by the consumer's goroutine once it runs.
type streamCursor struct {
	sq     *vhost.Stream
	parts  []*stream.RecordReader // one per partition, each at the consumer's position
	single bool                   // x-stream-partition: read only that partition, never add others
	filter *streamFilter
	wake   chan struct{} // an ack returned credit
	stop   chan struct{}
	once   sync.Once
}

func (sc *streamCursor) close() { sc.once.Do(func() { close(sc.stop) }) }

func (sc *streamCursor) signal() {
	select {
	case sc.wake <- struct{}{}:
	default:
	}
}

// startOffset resolves x-stream-offset against one partition.
func startOffset(p *stream.Partition, spec any) (int64, error) {
	// Positions are resolved against the log end (what was written, even if not yet durable):
	// the consumer then waits for the high watermark to pass them.
	start, hw := p.StartOffset(), p.EndOffset()
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
		off, err := p.BatchOffsetForTimestamp(v.UnixMilli())
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

// newStreamCursor resolves a consumer's arguments: x-stream-partition, x-stream-offset and the
// filter. Its errors are the text of a 406.
func newStreamCursor(sq *vhost.Stream, queueName string, args map[string]any) (*streamCursor, error) {
	filter, err := parseStreamFilter(args)
	if err != nil {
		return nil, err
	}
	sc := &streamCursor{sq: sq, filter: filter, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	parts := sq.Topic().Partitions()
	spec := args["x-stream-offset"]
	if v, ok := args["x-stream-partition"]; ok {
		i, ok := intArg(v)
		if !ok || i < 0 || i >= len(parts) {
			return nil, fmt.Errorf("invalid arg 'x-stream-partition': %v (stream queue '%s' has partitions 0 to %d)", v, queueName, len(parts)-1)
		}
		parts = parts[i : i+1]
		sc.single = true
	} else if _, numeric := intArg(spec); numeric && len(parts) > 1 {
		return nil, fmt.Errorf("x-stream-offset %v is an offset within one partition, and stream queue '%s' has %d partitions: give x-stream-partition too, or use first, last, next or a timestamp", spec, queueName, len(parts))
	}
	for _, p := range parts {
		next, err := startOffset(p, spec)
		if err != nil {
			return nil, err
		}
		sc.parts = append(sc.parts, p.NewRecordReader(next))
	}
	return sc, nil
}

// addNewPartitions starts cursors, at their beginning, for partitions the topic gained.
func (sc *streamCursor) addNewPartitions() {
	if sc.single {
		return
	}
	parts := sc.sq.Topic().Partitions()
	for _, p := range parts[min(len(sc.parts), len(parts)):] {
		sc.parts = append(sc.parts, p.NewRecordReader(p.StartOffset()))
	}
}

func (ch *channel) consumeStream(m *wire.BasicConsume, qs *vhost.Queue) error {
	if m.NoAck {
		return channelErr(wire.PreconditionFailed, m, "stream queue '%s' in vhost '%s' requires manual acknowledgements (no-ack=false)", qs.Queue.Name(), ch.vhostName())
	}
	ch.mu.Lock()
	prefetch := ch.prefetch
	ch.mu.Unlock()
	if prefetch <= 0 {
		return channelErr(wire.PreconditionFailed, m, "consumer prefetch count is not set for stream queue '%s' in vhost '%s'", qs.Queue.Name(), ch.vhostName())
	}
	sc, err := newStreamCursor(qs.Stream, qs.Queue.Name(), m.Arguments)
	if err != nil {
		return channelErr(wire.PreconditionFailed, m, "%v", err)
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverNamed("amq.ctag-")
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return connErr(wire.NotAllowed, m, "attempt to reuse consumer tag '%s'", tag)
	}
	cons := &chConsumer{ch: ch, tag: tag, qs: qs, prefetch: prefetch, stream: sc, exclusive: m.Exclusive, args: m.Arguments}
	ch.consumers[tag] = cons
	ch.mu.Unlock()
	// Registered with the (always empty) queue too, so that exclusive consumers and the
	// cancel notification on queue deletion work as for any queue.
	priority, _ := intArg(m.Arguments["x-priority"])
	if err := qs.Queue.Consume(queue.ConsumerSpec{Tag: tag, Exclusive: m.Exclusive, Priority: priority, Consumer: cons}); err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return channelErr(wire.AccessRefused, m, "queue '%s' in vhost '%s' in exclusive use", m.Queue, ch.vhostName())
	}
	ch.c.trackConsumer(qs.Queue, 1)
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
	var changes stream.Changes
	for {
		sc.addNewPartitions()
		changes.Reset()
		progressed := false
		for _, r := range sc.parts {
			// The partition is added before it is read, so that growth after the read wakes
			// the wait.
			changes.Add(r.Partition())
			read, ok := cons.readPartition(r)
			if !ok {
				return
			}
			progressed = progressed || read
		}
		if !progressed && !cons.waitData(&changes) {
			return
		}
	}
}

// waitData waits until a partition grows or it is time to look for new partitions; false once
// the consumer is cancelled.
func (cons *chConsumer) waitData(changes *stream.Changes) bool {
	sc := cons.stream
	var poll <-chan time.Time // nil, never ready, for a consumer pinned to one partition
	if !sc.single {
		t := time.NewTimer(streamPartitionPoll)
		defer t.Stop()
		poll = t.C
	}
	return !changes.Wait(sc.stop, poll)
}

// readPartition delivers one read's worth of records from r. read says whether there was
// anything to read; ok is false once the consumer is gone.
func (cons *chConsumer) readPartition(r *stream.RecordReader) (read, ok bool) {
	sc := cons.stream
	p := r.Partition()
	stopped := false
	read, err := r.Read(max(streamReadBytes/len(sc.parts), streamMinReadBytes), func(rec *stream.Record) bool {
		if sc.filter.match(rec) {
			msg := &queue.Message{RoutingKey: string(rec.Key), Properties: deliveryProperties(rec, p.Index), Body: append([]byte(nil), rec.Value...)}
			for !cons.TryDeliver(queue.Delivery{Queue: cons.qs.Queue, ID: uint64(rec.Offset), Message: msg, ConsumerTag: cons.tag}) {
				if !cons.waitRoom() {
					stopped = true
					return false
				}
			}
		}
		return true
	})
	if stopped {
		return true, false
	}
	if err != nil {
		cons.ch.c.srv.rl.Warn("cannot read stream", "cannot read stream", "remote", cons.ch.c.nc.RemoteAddr().String(), "queue", cons.qs.Queue.Name(), "partition", p.Index, "offset", r.Offset(), "err", err)
		cons.cancelBroken()
		return true, false
	}
	return read, true
}

// cancelBroken ends a stream consumer that cannot go on (a batch it cannot read), as the
// server ending a consumer does: the client gets basic.cancel if it advertised
// consumer_cancel_notify, rather than a consumer that silently stops delivering.
func (cons *chConsumer) cancelBroken() {
	ch := cons.ch
	ch.mu.Lock()
	wasActive := ch.consumers[cons.tag] == cons
	if wasActive {
		delete(ch.consumers, cons.tag)
	}
	released := ch.released
	ch.mu.Unlock()
	if !wasActive {
		return // cancelled meanwhile, by the client or with its queue
	}
	ch.dropConsumer(cons)
	if !released && ch.c.capCancelNotify {
		ch.send(&wire.BasicCancel{ConsumerTag: cons.tag, Nowait: true})
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
