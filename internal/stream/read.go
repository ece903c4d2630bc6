package stream

// Reading a partition. Front ends never touch a partition's log: they read through these
// methods, as bytes for sendfile (Read, Kafka Fetch), as decoded records (RecordReader, AMQP
// stream consumers), or as positions (StartOffset, HighWatermark, ...); they wait for growth
// with Changes and drop a prefix with DeleteRecords.

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// StartOffset is the first offset readers can read (raised by retention and DeleteRecords).
func (p *Partition) StartOffset() int64 { return p.log.StartOffset() }

// HighWatermark is the offset after the last one readers may read (durable under the default
// sync policy).
func (p *Partition) HighWatermark() int64 { return p.log.HighWatermark() }

// EndOffset is the offset the next append gets: written, but maybe not yet readable.
func (p *Partition) EndOffset() int64 { return p.log.EndOffset() }

// Changed returns a channel closed when the high watermark next moves. Take it before looking
// at the partition, so that growth after the look is not missed (see Changes).
func (p *Partition) Changed() <-chan struct{} { return p.log.Changed() }

// Read returns the file ranges of whole batches from the one holding offset on, up to about
// maxBytes (the first batch is whole whatever its size), for sendfile; the caller releases it.
// An offset outside [StartOffset, HighWatermark] is log.ErrOffsetOutOfRange.
func (p *Partition) Read(offset int64, maxBytes int) (*log.ReadResult, error) {
	return p.log.Read(offset, maxBytes)
}

// DeleteRecords is Kafka's DeleteRecords: it raises the start offset to offset (-1: the high
// watermark) and returns the new start offset. An offset beyond the high watermark is
// log.ErrOffsetOutOfRange.
func (p *Partition) DeleteRecords(offset int64) (int64, error) {
	if p.Topic.Internal {
		return -1, fmt.Errorf("cannot delete records of internal topic %s: %w", p.Topic.Name, ErrInternalTopic)
	}
	hw := p.log.HighWatermark()
	if offset == -1 {
		offset = hw
	}
	if offset < 0 || offset > hw {
		return -1, fmt.Errorf("cannot delete records of %s-%d before %d (high watermark %d): %w",
			p.Topic.Name, p.Index, offset, hw, log.ErrOffsetOutOfRange)
	}
	if err := p.log.DeleteRecordsBefore(offset); err != nil {
		return -1, err
	}
	return p.log.StartOffset(), nil
}

// BatchOffsetForTimestamp is the base offset of the first batch holding a timestamp at or
// after ts, -1 if none: where a reader attaching by time starts (as a RabbitMQ stream consumer
// attaches at the chunk holding the timestamp).
func (p *Partition) BatchOffsetForTimestamp(ts int64) (int64, error) {
	return p.log.OffsetForTimestamp(ts)
}

// Record is one record read from a partition; its slices alias the reader's buffers and are
// valid until the reader's next Read.
type Record struct {
	Offset    int64
	Timestamp int64 // ms: baseTimestamp + timestampDelta
	rb.Record
}

// RecordReader reads the decoded records of one partition in offset order from a position on,
// decompressing each batch within the bound max.message.bytes sets (recordbatch.InflateLimit).
// It is owned by one goroutine; its buffers are reused from read to read.
type RecordReader struct {
	p       *Partition
	next    int64
	buf     []byte
	inflate []byte
}

// NewRecordReader reads p from offset on.
func (p *Partition) NewRecordReader(offset int64) *RecordReader {
	return &RecordReader{p: p, next: offset}
}

// Partition is the partition read.
func (r *RecordReader) Partition() *Partition { return r.p }

// Offset is the offset of the next record to read.
func (r *RecordReader) Offset() int64 { return r.next }

// Read reads about maxBytes of batches at the reader's offset and calls fn for each record at
// or after it, in order, until fn returns false (that record is then read again next time). A
// reader behind the start offset moves to it (retention removed what it had not read). read
// reports whether there was anything to read; an error means a batch that cannot be read (it
// wraps recordbatch.ErrCorruptBatch, ErrInvalidRecord or ErrTooLarge) or a failed read, and
// the reader does not move past it.
func (r *RecordReader) Read(maxBytes int, fn func(*Record) bool) (read bool, err error) {
	l := r.p.log
	if start := l.StartOffset(); r.next < start {
		r.next = start
	}
	if r.next >= l.HighWatermark() {
		return false, nil
	}
	rr, err := l.Read(r.next, maxBytes)
	if errors.Is(err, log.ErrOffsetOutOfRange) {
		return true, nil // raced with retention; the next read starts from the new start
	}
	if err == nil {
		r.buf, err = rr.AppendTo(r.buf[:0])
		rr.Release()
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %s-%d at %d: %w", r.p.Topic.Name, r.p.Index, r.next, err)
	}
	stopped, end, err := r.records(fn)
	if err != nil {
		return true, fmt.Errorf("cannot read %s-%d at %d: %w", r.p.Topic.Name, r.p.Index, r.next, err)
	}
	if !stopped {
		// Past batches that deliver nothing (control batches, records before the offset).
		r.next = max(r.next, end)
	}
	return true, nil
}

// records walks the whole batches in r.buf; end is the offset after the last one.
func (r *RecordReader) records(fn func(*Record) bool) (stopped bool, end int64, err error) {
	limit := r.p.inflateLimit()
	var rec Record
	for b := r.buf; len(b) > 0; {
		batch, rest, h, err := rb.Split(b)
		if err != nil {
			return false, end, err
		}
		b = rest
		if h.Control() {
			end = h.LastOffset() + 1
			continue
		}
		body, err := rb.Body(batch, &h, r.inflate, limit)
		if err != nil {
			return false, end, fmt.Errorf("batch at %d: %w", h.BaseOffset, err)
		}
		if h.Codec() != rb.CodecNone {
			r.inflate = body[:0]
		}
		it := rb.NewRecords(body, h.RecordCount)
		for it.Next(&rec.Record) {
			rec.Offset = h.BaseOffset + int64(rec.OffsetDelta)
			rec.Timestamp = h.BaseTimestamp + rec.TimestampDelta
			if rec.Offset < r.next {
				continue
			}
			if !fn(&rec) {
				return true, end, nil
			}
			r.next = rec.Offset + 1
		}
		if err := it.Err(); err != nil {
			return false, end, fmt.Errorf("batch at %d: %w", h.BaseOffset, err)
		}
		end = h.LastOffset() + 1
	}
	return false, end, nil
}

// Changes waits until any of a set of partitions changes: the one long-poll wait of every
// reader (Kafka Fetch, AMQP stream consumers). Add each partition before looking at it, then
// Wait; Reset before the next round. A Changes is owned by one goroutine.
type Changes struct {
	chans []<-chan struct{}
	cases []reflect.SelectCase
}

// Reset empties the set.
func (c *Changes) Reset() { c.chans = c.chans[:0] }

// Add adds p, taking its change channel now.
func (c *Changes) Add(p *Partition) { c.chans = append(c.chans, p.Changed()) }

// Wait waits until a partition added since Reset changes, timer fires (nil: never) or done is
// closed; it reports whether done was closed.
func (c *Changes) Wait(done <-chan struct{}, timer <-chan time.Time) (stopped bool) {
	switch len(c.chans) {
	case 0:
		select {
		case <-timer:
		case <-done:
			return true
		}
		return false
	case 1: // the common case, without reflection
		select {
		case <-c.chans[0]:
		case <-timer:
		case <-done:
			return true
		}
		return false
	}
	c.cases = append(c.cases[:0],
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer)})
	for _, ch := range c.chans {
		c.cases = append(c.cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(c.cases)
	return chosen == 0
}

// Size is the bytes of the partition's log on disk (for the admin plane's metrics).
func (p *Partition) Size() int64 { return p.log.Size() }
