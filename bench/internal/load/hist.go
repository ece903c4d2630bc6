package load

import (
	"math/bits"
	"sync"
	"time"
)

// subBuckets is the number of buckets per power of two above 1024 µs: a recorded value is
// off by at most 1/512 of itself (0.2%).
const subBuckets = 512

// hist is a log-linear latency histogram in microseconds: exact below 1,024 µs, then 512
// buckets per power of two. Not safe for concurrent use.
type hist struct {
	counts []uint64
	n      uint64
	max    int64
}

func bucketOf(us int64) int {
	if us < 2*subBuckets {
		return int(us)
	}
	e := bits.Len64(uint64(us)) - 10
	return e*subBuckets + int(us>>e)
}

func valueOf(b int) int64 {
	if b < 2*subBuckets {
		return int64(b)
	}
	e := b/subBuckets - 1
	m := b - e*subBuckets
	return int64(m) << e
}

func (h *hist) record(us int64) {
	if us < 0 {
		us = 0
	}
	b := bucketOf(us)
	if b >= len(h.counts) {
		c := make([]uint64, b+1+subBuckets)
		copy(c, h.counts)
		h.counts = c
	}
	h.counts[b]++
	h.n++
	if us > h.max {
		h.max = us
	}
}

func (h *hist) merge(o *hist) {
	if len(o.counts) > len(h.counts) {
		c := make([]uint64, len(o.counts))
		copy(c, h.counts)
		h.counts = c
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile in microseconds (0 for an empty histogram).
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(valueOf(b), h.max)
		}
	}
	return h.max
}

// Percentiles in milliseconds, as the result files carry them.
type Percentiles struct {
	Count uint64  `json:"count"`
	Avg   float64 `json:"avg_ms,omitempty"` // only where a tool reports no percentiles (ProducerPerformance's per-second lines)
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *hist) percentiles() *Percentiles {
	if h.n == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return &Percentiles{Count: h.n, P50: ms(h.quantile(0.50)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(h.max)}
}

// Series records latencies into one histogram per second of the run (seconds counted from
// start) and counts records per second. Safe for concurrent use.
type Series struct {
	mu     sync.Mutex
	start  time.Time
	warmup time.Duration
	end    time.Duration // records completed after it are left out of total
	secs   []*hist
	total  hist // after the warm-up and before end only
}

func NewSeries(start time.Time, warmup, end time.Duration) *Series {
	return &Series{start: start, warmup: warmup, end: end}
}

func (s *Series) Record(at time.Time, lat time.Duration) {
	d := at.Sub(s.start)
	sec := int(d / time.Second)
	if sec < 0 {
		sec = 0
	}
	us := lat.Microseconds()
	s.mu.Lock()
	for len(s.secs) <= sec {
		s.secs = append(s.secs, &hist{})
	}
	s.secs[sec].record(us)
	if d >= s.warmup && d < s.end {
		s.total.record(us)
	}
	s.mu.Unlock()
}

// Second is one second of a run: records completed in it and their latency percentiles.
type Second struct {
	T       int          `json:"t"`
	Records uint64       `json:"records"`
	Ack     *Percentiles `json:"ack,omitempty"`
	E2E     *Percentiles `json:"e2e,omitempty"`
}

// FillSeries writes ack (and end-to-end, when e2e is not nil) per-second figures into out.
func FillSeries(ack, e2e *Series) []Second {
	ack.mu.Lock()
	defer ack.mu.Unlock()
	n := len(ack.secs)
	if e2e != nil {
		e2e.mu.Lock()
		defer e2e.mu.Unlock()
		n = max(n, len(e2e.secs))
	}
	out := make([]Second, n)
	for i := range out {
		out[i].T = i + 1
		if i < len(ack.secs) {
			out[i].Ack = ack.secs[i].percentiles()
			out[i].Records = ack.secs[i].n
		}
		if e2e != nil && i < len(e2e.secs) {
			out[i].E2E = e2e.secs[i].percentiles()
		}
	}
	return out
}

// Total returns the percentiles of the records completed after the warm-up and before the end.
func (s *Series) Total() *Percentiles {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total.percentiles()
}
