package broker

// Hot-path metrics: histograms fed by the log's group commits (log.SyncObserver), the
// Kafka front end's requests (kafka.RequestObserver) and the AMQP front end's method frames
// (amqp.MethodObserver), and counters of each topic's bytes and records in and out
// (kafka.TopicObserver). Each observation is one atomic update on a child resolved at
// start-up (per API key, per AMQP method) or on a topic's first use (cached per topic).
//
// The per-topic counters take the names Prometheus' JMX exporter gives Kafka's
// BrokerTopicMetrics MBeans under its usual rules (kafka_server_brokertopicmetrics_*), with
// _total as client_golang requires of counters: bytes_in (record batches as produced),
// messages_in (records), bytes_out (record batches fetched by consumers).

import (
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"

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

	topicBytesIn, topicBytesOut, topicMsgsIn *prometheus.CounterVec
	topics                                   sync.Map // topic name -> *topicCounters

	amqpMethods *prometheus.HistogramVec
	byMethod    [amqpClasses][amqpMethodsPerClass]prometheus.Observer
	otherMethod prometheus.Observer
}

// topicCounters are one topic's children, resolved on its first produce or fetch.
type topicCounters struct{ bytesIn, bytesOut, msgsIn prometheus.Counter }

// amqpClasses and amqpMethodsPerClass size the fixed array of AMQP method children: a class
// ID maps to a slot (amqpClassSlot), a method ID is below 128 in every class of 0-9-1.
const (
	amqpClasses         = 8
	amqpMethodsPerClass = 128
)

func amqpClassSlot(class uint16) int {
	switch class {
	case 10: // connection
		return 0
	case 20: // channel
		return 1
	case 30: // access
		return 2
	case 40: // exchange
		return 3
	case 50: // queue
		return 4
	case 60: // basic
		return 5
	case 85: // confirm
		return 6
	case 90: // tx
		return 7
	}
	return -1
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
	m.newTopicMetrics()
	m.newAMQPMetrics()
	return m
}

func (m *brokerMetrics) newTopicMetrics() {
	m.topicBytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_bytes_in_total",
		Help: "Bytes of record batches produced to the topic and appended (duplicates of idempotent retries not counted)."}, []string{"topic"})
	m.topicBytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_bytes_out_total",
		Help: "Bytes of record batches sent to fetching consumers of the topic."}, []string{"topic"})
	m.topicMsgsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kafka_server_brokertopicmetrics_messages_in_total",
		Help: "Records produced to the topic and appended."}, []string{"topic"})
}

func (m *brokerMetrics) newAMQPMetrics() {
	m.amqpMethods = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "yard_amqp_method_duration_seconds",
		Help:    "Time the connection's reader spent handling one AMQP method frame a client sent, per method (content frames and confirms' durability waits not included); its _count is the method count.",
		Buckets: prometheus.ExponentialBuckets(0.00001, 2, 18)}, []string{"method"}) // 10 µs .. 1.3 s
	for _, id := range wire.MethodIDs() {
		c, meth := amqpClassSlot(wire.ClassOf(id)), wire.MethodOf(id)
		if c >= 0 && meth < amqpMethodsPerClass {
			m.byMethod[c][meth] = m.amqpMethods.WithLabelValues(wire.MethodName(id))
		}
	}
	m.otherMethod = m.amqpMethods.WithLabelValues("other")
}

// ObserveMethod implements amqp.MethodObserver.
func (m *brokerMetrics) ObserveMethod(id uint32, d time.Duration) {
	o := m.otherMethod
	if c, meth := amqpClassSlot(wire.ClassOf(id)), wire.MethodOf(id); c >= 0 && meth < amqpMethodsPerClass && m.byMethod[c][meth] != nil {
		o = m.byMethod[c][meth]
	}
	o.Observe(d.Seconds())
}

func (m *brokerMetrics) topic(name string) *topicCounters {
	if tc, ok := m.topics.Load(name); ok {
		return tc.(*topicCounters)
	}
	tc, _ := m.topics.LoadOrStore(name, &topicCounters{m.topicBytesIn.WithLabelValues(name),
		m.topicBytesOut.WithLabelValues(name), m.topicMsgsIn.WithLabelValues(name)})
	return tc.(*topicCounters)
}

// forgetTopic drops a deleted topic's series, so that /metrics stops showing it and a topic
// created later under the same name counts from zero.
func (m *brokerMetrics) forgetTopic(name string) {
	m.topics.Delete(name)
	m.topicBytesIn.DeleteLabelValues(name)
	m.topicBytesOut.DeleteLabelValues(name)
	m.topicMsgsIn.DeleteLabelValues(name)
}

// ObserveProduce implements kafka.TopicObserver.
func (m *brokerMetrics) ObserveProduce(topic string, bytes, records int64) {
	tc := m.topic(topic)
	tc.bytesIn.Add(float64(bytes))
	tc.msgsIn.Add(float64(records))
}

// ObserveFetch implements kafka.TopicObserver.
func (m *brokerMetrics) ObserveFetch(topic string, bytes int64) {
	m.topic(topic).bytesOut.Add(float64(bytes))
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
	reg.MustRegister(m.fsync, m.batch, m.kafkaReqs, m.topicBytesIn, m.topicBytesOut, m.topicMsgsIn, m.amqpMethods)
}
