package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Ack is one acknowledged record: where the broker said it is.
type Ack struct {
	Partition int32
	Offset    int64
	ID        string    // the record's value: "<producer>-<seq>"
	Call      time.Time // when it was handed to the client
	At        time.Time // when it was acknowledged
}

// Failure is a record whose produce failed: it may or may not have been written.
type Failure struct {
	Partition int32
	ID        string
	Call      time.Time
}

// Recorder collects every producer's acknowledgements.
type Recorder struct {
	mu     sync.Mutex
	acks   []Ack
	failed []Failure
	errs   map[string]int
	last   map[int32]time.Time // per partition, the latest acknowledgement
}

func (r *Recorder) add(a Ack) {
	r.mu.Lock()
	r.acks = append(r.acks, a)
	if r.last == nil {
		r.last = map[int32]time.Time{}
	}
	if a.At.After(r.last[a.Partition]) {
		r.last[a.Partition] = a.At
	}
	r.mu.Unlock()
}

func (r *Recorder) fail(f Failure, err error) {
	r.mu.Lock()
	r.failed = append(r.failed, f)
	if r.errs == nil {
		r.errs = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	r.errs[msg]++
	r.mu.Unlock()
}

// Acks is a copy of every acknowledgement so far.
func (r *Recorder) Acks() []Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acks)
}

// Failed is how many records failed, and why (first 80 bytes of each error).
func (r *Recorder) Failed() (int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failed), maps(r.errs)
}

// Failures is a copy of every failed record so far.
func (r *Recorder) Failures() []Failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.failed)
}

func maps(m map[string]int) map[string]int {
	c := map[string]int{}
	for k, v := range m {
		c[k] = v
	}
	return c
}

// LastAck is the time of the latest acknowledgement (zero: none).
func (r *Recorder) LastAck() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, t := range r.last {
		if t.After(last) {
			last = t
		}
	}
	return last
}

// Silent is the partitions among 0..partitions-1 with no acknowledgement after since.
func (r *Recorder) Silent(partitions int32, since time.Time) []int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int32
	for p := range partitions {
		if !r.last[p].After(since) {
			s = append(s, p)
		}
	}
	return s
}

// LongestGap is the longest time a partition went without an acknowledgement within
// [from, to], over the partitions 0..partitions-1.
func (r *Recorder) LongestGap(partitions int32, from, to time.Time) time.Duration {
	r.mu.Lock()
	ts := make([][]time.Time, partitions)
	for i := len(r.acks) - 1; i >= 0; i-- { // newest first: stop at the first too old (acks come roughly in order)
		a := r.acks[i]
		if a.At.Before(from.Add(-time.Minute)) {
			break
		}
		if !a.At.Before(from) && !a.At.After(to) && a.Partition < partitions {
			ts[a.Partition] = append(ts[a.Partition], a.At)
		}
	}
	r.mu.Unlock()
	gap := time.Duration(0)
	for _, pts := range ts {
		slices.SortFunc(pts, func(a, b time.Time) int { return a.Compare(b) })
		prev := from
		for _, t := range append(pts, to) {
			gap = max(gap, t.Sub(prev))
			prev = t
		}
	}
	return gap
}

// Producer is one franz-go client producing numbered records round-robin over the partitions.
type Producer struct {
	Name       string
	Idempotent bool
	cl         *kgo.Client
}

// NewProducer connects a producer with acks=all; idempotent unless told otherwise.
func NewProducer(seeds []string, topic, name string, idempotent bool) (*Producer, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(20 * time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(100 * time.Millisecond), kgo.ProducerLinger(2 * time.Millisecond)}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(1))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot start producer %s: %w", name, err)
	}
	return &Producer{Name: name, Idempotent: idempotent, cl: cl}, nil
}

// Close closes the client.
func (p *Producer) Close() { p.cl.Close() }

// Run produces batches of `batch` records (record i to partition i % partitions) until ctx
// ends, recording every acknowledgement and failure in rec. It returns when ctx ends without
// waiting for the records in flight: an idempotent producer does not time out a record sent
// to a partition that never answers, and Close fails them.
func (p *Producer) Run(ctx context.Context, partitions int32, batch int, rec *Recorder) {
	seq := 0
	for ctx.Err() == nil {
		recs := make([]*kgo.Record, batch)
		for i := range recs {
			recs[i] = &kgo.Record{Partition: int32(seq % int(partitions)), Value: fmt.Appendf(nil, "%s-%d", p.Name, seq)}
			seq++
		}
		var wg sync.WaitGroup
		wg.Add(len(recs))
		for _, r := range recs {
			call := time.Now()
			p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					rec.fail(Failure{Partition: r.Partition, ID: string(r.Value), Call: call}, err)
					return
				}
				rec.add(Ack{Partition: r.Partition, Offset: r.Offset, ID: string(r.Value), Call: call, At: time.Now()})
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// Report is what the checker found.
type Report struct {
	Acked      int             // acknowledgements checked
	Lost       int             // acknowledged, but not at its offset (or not at all)
	Unreadable int             // acknowledged on a partition that could not be read
	Moved      int             // of Lost: present, at another offset
	DupIdem    int             // extra copies of idempotent producers' records
	DupPlain   int             // extra copies of non-idempotent producers' records
	Gaps       int             // missing offsets below a partition's end
	Conflicts  int             // two acknowledgements of one offset
	Read       int             // records read
	Examples   []string        // the first problems, for the log
	EndOffsets map[int32]int64 // per partition
}

// OK is no loss, no idempotent duplicate, no gap, no conflict.
func (r Report) OK() bool {
	return r.Lost == 0 && r.Unreadable == 0 && r.DupIdem == 0 && r.Gaps == 0 && r.Conflicts == 0
}

func (r *Report) example(f string, a ...any) {
	if len(r.Examples) < 20 {
		r.Examples = append(r.Examples, fmt.Sprintf(f, a...))
	}
}

// ReadAll reads every partition of topic from offset 0 to its end offset, through seeds. A
// partition whose end offset cannot be listed within listFor (its group is stuck) is left out
// of got and end, and named in the error; the others are still read.
func ReadAll(ctx context.Context, seeds []string, topic string, partitions int32, listFor time.Duration) (map[int32]map[int64]string, map[int32]int64, error) {
	admCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, err
	}
	defer admCl.Close()
	end := map[int32]int64{}
	listed := time.Now().Add(listFor)
	var listErr error
	for len(end) < int(partitions) {
		ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
		for p := range partitions {
			if o, ok := ends.Lookup(topic, p); ok && o.Err == nil {
				end[p] = o.Offset
			} else if ok {
				err = o.Err
			} else if err == nil {
				err = fmt.Errorf("partition %d missing from the answer", p)
			}
		}
		if len(end) == int(partitions) {
			break
		}
		if ctx.Err() != nil || time.Now().After(listed) {
			var missing []int32
			for p := range partitions {
				if _, ok := end[p]; !ok {
					missing = append(missing, p)
				}
			}
			listErr = fmt.Errorf("cannot list the end offsets of partitions %v: %v", missing, err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := map[string]map[int32]kgo.Offset{topic: {}}
	got := map[int32]map[int64]string{}
	next := map[int32]int64{}
	for p := range end {
		start[topic][p] = kgo.NewOffset().At(0)
		got[p] = map[int64]string{}
	}
	if len(end) == 0 {
		return got, end, listErr
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(start), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	done := func() bool {
		for p := range end {
			if next[p] < end[p] {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, end, errors.Join(listErr, fmt.Errorf("cannot read to the end (%v of %v): %w", next, end, ctx.Err()))
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got[r.Partition] != nil {
				got[r.Partition][r.Offset] = string(r.Value)
				next[r.Partition] = max(next[r.Partition], r.Offset+1)
			}
		})
	}
	return got, end, listErr
}

// Check compares what was read with the acknowledgements.
func Check(acks []Ack, got map[int32]map[int64]string, end map[int32]int64, idempotent func(id string) bool) Report {
	rep := Report{Acked: len(acks), EndOffsets: end}
	where := make(map[string][]loc, len(acks))
	for p, recs := range got {
		for o := int64(0); o < end[p]; o++ {
			v, ok := recs[o]
			if !ok {
				rep.Gaps++
				rep.example("gap: partition %d offset %d missing below end %d", p, o, end[p])
				continue
			}
			rep.Read++
			where[v] = append(where[v], loc{p, o})
		}
	}
	for v, w := range where {
		if len(w) > 1 {
			if idempotent(v) {
				rep.DupIdem += len(w) - 1
				rep.example("duplicate of idempotent %s at %s", v, locs(w))
			} else {
				rep.DupPlain += len(w) - 1
			}
		}
	}
	at := map[[2]int64]string{}
	for _, a := range acks {
		k := [2]int64{int64(a.Partition), a.Offset}
		if prev, ok := at[k]; ok && prev != a.ID {
			rep.Conflicts++
			rep.example("conflict: %s and %s both acknowledged at %d@%d", prev, a.ID, a.Partition, a.Offset)
		}
		at[k] = a.ID
		if _, ok := end[a.Partition]; !ok {
			rep.Unreadable++
			continue
		}
		if got[a.Partition][a.Offset] != a.ID {
			rep.Lost++
			if w := where[a.ID]; len(w) > 0 {
				rep.Moved++
				rep.example("acknowledged %s at %d@%d, read at %s (there: %q)", a.ID, a.Partition, a.Offset, locs(w), got[a.Partition][a.Offset])
			} else {
				rep.example("acknowledged %s at %d@%d, not read (there: %q)", a.ID, a.Partition, a.Offset, got[a.Partition][a.Offset])
			}
		}
	}
	return rep
}

// loc is a record's place: partition and offset.
type loc struct {
	p int32
	o int64
}

func locs(w []loc) string {
	s := make([]string, len(w))
	for i, l := range w {
		s[i] = fmt.Sprintf("%d@%d", l.p, l.o)
	}
	return strings.Join(s, " ")
}

// GroupLive joins a new consumer group on topic and waits until it has received a record
// and committed its offsets.
func GroupLive(ctx context.Context, seeds []string, topic, group string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 100)
		if ctx.Err() != nil {
			return fmt.Errorf("group %s received nothing: %w", group, ctx.Err())
		}
		if fs.NumRecords() > 0 {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return fmt.Errorf("group %s cannot commit: %w", group, err)
			}
			return nil
		}
	}
}
