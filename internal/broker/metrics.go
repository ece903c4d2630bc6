package broker

// Hot-path metrics: histograms fed by the log's group commits (log.SyncObserver) and the
// Kafka front end's requests (kafka.RequestObserver). Each observation is one atomic
// histogram update on a child resolved at start-up (no label lookup per request).

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxKafkaAPIKey bounds the API keys with a pre-resolved child; higher keys share "other".
const maxKafkaAPIKey = 128

type brokerMetrics struct {
	fsync     prometheus.Histogram
	batch     prometheus.Histogram
	kafkaReqs *prometheus.HistogramVec
	byKey     [maxKafkaAPIKey]prometheus.Observer
	other     prometheus.Observer
}

func newBrokerMetrics() *brokerMetrics {
	m := &brokerMetrics{
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "yard_log_fsync_duration_seconds",
			Help:    "Duration of the fsync of one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}), // 100 µs .. 3.3 s
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "yard_log_group_commit_records",
			Help:    "Records made durable by one group commit (one fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10)}), // 1 .. 262144
		kafkaReqs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "yard_kafka_request_duration_seconds",
			Help:    "Time from a Kafka request's arrival to its response written, per API (durability and long-poll waits included); its _count is the request count.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"api"}),
	}
	for k := range m.byKey {
		if name := kmsg.NameForKey(int16(k)); name != "" && name != "Unknown" {
			m.byKey[k] = m.kafkaReqs.WithLabelValues(name)
		}
	}
	m.other = m.kafkaReqs.WithLabelValues("other")
	return m
}

// ObserveSync implements log.SyncObserver.
func (m *brokerMetrics) ObserveSync(fsync time.Duration, records int64) {
	m.fsync.Observe(fsync.Seconds())
	m.batch.Observe(float64(records))
}

// ObserveRequest implements kafka.RequestObserver.
func (m *brokerMetrics) ObserveRequest(key int16, d time.Duration) {
	o := m.other
	if key >= 0 && int(key) < len(m.byKey) && m.byKey[key] != nil {
		o = m.byKey[key]
	}
	o.Observe(d.Seconds())
}

func (m *brokerMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(m.fsync, m.batch, m.kafkaReqs)
}
