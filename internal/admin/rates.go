package admin

// Rates for RabbitMQ's message_stats (*_details.rate, per second): each queue's counters
// are compared with a sample kept from at least rateWindow ago, as RabbitMQ's management
// plugin reports rates over its last sampling interval.

import (
	"sync"
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// rateWindow is the least age of the sample a rate is computed against.
const rateWindow = 5 * time.Second

type rateSample struct {
	at    time.Time
	stats queue.Stats
}

// rates keeps two samples per queue: prev (what rates are computed against) and cur (the
// newest, becoming prev once prev is rateWindow old).
type rates struct {
	mu   sync.Mutex // guards by
	by   map[*vhost.Queue]*[2]rateSample
	now  func() time.Time
	seen int
}

// Rate is RabbitMQ's {"rate": per second}.
type Rate struct {
	Rate float64 `json:"rate"`
}

// MessageStats is RabbitMQ's message_stats of a queue.
type MessageStats struct {
	Publish             int64 `json:"publish"`
	PublishDetails      Rate  `json:"publish_details"`
	DeliverGet          int64 `json:"deliver_get"`
	DeliverGetDetails   Rate  `json:"deliver_get_details"`
	Redeliver           int64 `json:"redeliver"`
	RedeliverDetails    Rate  `json:"redeliver_details"`
	Ack                 int64 `json:"ack"`
	AckDetails          Rate  `json:"ack_details"`
	DeadLettered        int64 `json:"dead_lettered"` // yard's: RabbitMQ has no such field
	DeadLetteredDetails Rate  `json:"dead_lettered_details"`
}

func (r *rates) messageStats(q *vhost.Queue) MessageStats {
	st := q.Stats()
	now := r.now()
	r.mu.Lock()
	s := r.by[q]
	if s == nil {
		s = &[2]rateSample{{now, st}, {now, st}}
		r.by[q] = s
	}
	prev := s[0]
	s[1] = rateSample{now, st}
	if now.Sub(s[0].at) >= rateWindow {
		s[0] = s[1]
	}
	r.seen++
	if r.seen%1024 == 0 { // forget deleted queues now and then
		for k := range r.by {
			if k.Deleted() {
				delete(r.by, k)
			}
		}
	}
	r.mu.Unlock()
	dt := now.Sub(prev.at).Seconds()
	rate := func(cur, old int64) Rate {
		if dt <= 0 {
			return Rate{}
		}
		return Rate{float64(cur-old) / dt}
	}
	return MessageStats{
		Publish: st.Published, PublishDetails: rate(st.Published, prev.stats.Published),
		DeliverGet: st.Delivered, DeliverGetDetails: rate(st.Delivered, prev.stats.Delivered),
		Redeliver: st.Redelivered, RedeliverDetails: rate(st.Redelivered, prev.stats.Redelivered),
		Ack: st.Acked, AckDetails: rate(st.Acked, prev.stats.Acked),
		DeadLettered: st.DeadLettered, DeadLetteredDetails: rate(st.DeadLettered, prev.stats.DeadLettered),
	}
}

// byteRates derives connections' byte rates as rates does queues': against a sample of each
// connection's counters kept from at least rateWindow ago.
type byteRates struct {
	mu   sync.Mutex // guards by
	by   map[uint64]*[2]byteSample
	now  func() time.Time
	seen int
}

type byteSample struct {
	at         time.Time
	recv, send uint64
}

// rates records connection id's counters now and returns its receive and send rates.
func (r *byteRates) rates(id, recv, send uint64) (recvRate, sendRate float64) {
	now := r.now()
	r.mu.Lock()
	if r.by == nil {
		r.by = map[uint64]*[2]byteSample{}
	}
	s := r.by[id]
	if s == nil {
		s = &[2]byteSample{{now, recv, send}, {now, recv, send}}
		r.by[id] = s
	}
	prev := s[0]
	s[1] = byteSample{now, recv, send}
	if now.Sub(s[0].at) >= rateWindow {
		s[0] = s[1]
	}
	r.seen++
	if r.seen%1024 == 0 { // forget closed connections now and then: samples a day old
		for k, v := range r.by {
			if now.Sub(v[1].at) > 24*time.Hour {
				delete(r.by, k)
			}
		}
	}
	r.mu.Unlock()
	dt := now.Sub(prev.at).Seconds()
	if dt <= 0 || recv < prev.recv || send < prev.send {
		return 0, 0
	}
	return float64(recv-prev.recv) / dt, float64(send-prev.send) / dt
}
