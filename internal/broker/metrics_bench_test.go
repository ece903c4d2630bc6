package broker

import (
	"testing"
	"time"
)

// BenchmarkMetricsPerProduceRequest measures, in isolation, what the hot-path metrics add to
// one Kafka produce request: the request histogram, the topic's three counters (bytes and
// records in; the topic resolved from the cache) and the group commit's two histograms (in
// the worst case of one fsync per request). Compare it with the cost of a produce request
// itself (internal/kafka's BenchmarkProduce, several µs of CPU per request).
func BenchmarkMetricsPerProduceRequest(b *testing.B) {
	m := newBrokerMetrics()
	m.ObserveProduce("orders", 1, 1) // resolve the topic's children, as its first produce does
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveProduce("orders", 16384, 16)
		m.ObserveSync(3*time.Millisecond, 16)
		m.ObserveRequest(0, 4*time.Millisecond)
	}
}

// BenchmarkMetricsPerAMQPMethod measures what one AMQP method frame adds (basic.publish).
func BenchmarkMetricsPerAMQPMethod(b *testing.B) {
	m := newBrokerMetrics()
	const basicPublish = 60<<16 | 40
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveMethod(basicPublish, 20*time.Microsecond)
	}
}
