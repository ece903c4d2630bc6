package admin

// The scrape-time collector: every gauge here is computed when Prometheus scrapes, from the
// broker's own state, so the hot paths pay nothing for it. Names follow the exporters people
// already alert on: kafka_exporter's (kafka_consumergroup_lag, kafka_topic_partition_*) and
// RabbitMQ's prometheus plugin (rabbitmq_queue_messages_ready, ...).

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// scrapeTimeout bounds the group coordinator's answer to one scrape.
const scrapeTimeout = 5 * time.Second

var (
	descGroupLag = prometheus.NewDesc("kafka_consumergroup_lag",
		"Log end offset minus the group's committed offset, per partition.", []string{"consumergroup", "topic", "partition"}, nil)
	descGroupLagSum = prometheus.NewDesc("kafka_consumergroup_lag_sum",
		"Lag of the group summed over the partitions of a topic.", []string{"consumergroup", "topic"}, nil)
	descGroupLagTotal = prometheus.NewDesc("yard_consumergroup_lag_total",
		"Lag of the group summed over every partition it has committed or been assigned.", []string{"consumergroup"}, nil)
	descGroupOffset = prometheus.NewDesc("kafka_consumergroup_current_offset",
		"The group's committed offset, per partition.", []string{"consumergroup", "topic", "partition"}, nil)
	descGroupMembers = prometheus.NewDesc("kafka_consumergroup_members",
		"Partitions of the group with an assigned member.", []string{"consumergroup"}, nil)

	descPartitions = prometheus.NewDesc("kafka_topic_partitions",
		"Partitions of the topic.", []string{"topic"}, nil)
	descPartEnd = prometheus.NewDesc("kafka_topic_partition_current_offset",
		"Log end offset of the partition.", []string{"topic", "partition"}, nil)
	descPartStart = prometheus.NewDesc("kafka_topic_partition_oldest_offset",
		"Log start offset of the partition.", []string{"topic", "partition"}, nil)
	descPartSize = prometheus.NewDesc("kafka_log_log_size",
		"Bytes of the partition's log on disk.", []string{"topic", "partition"}, nil)

	queueLabels    = []string{"vhost", "queue"}
	descQueueReady = prometheus.NewDesc("rabbitmq_queue_messages_ready",
		"Messages ready to be delivered.", queueLabels, nil)
	descQueueUnacked = prometheus.NewDesc("rabbitmq_queue_messages_unacked",
		"Messages delivered and not yet acknowledged.", queueLabels, nil)
	descQueueMessages = prometheus.NewDesc("rabbitmq_queue_messages",
		"Messages ready plus unacknowledged.", queueLabels, nil)
	descQueueConsumers = prometheus.NewDesc("rabbitmq_queue_consumers",
		"Consumers of the queue.", queueLabels, nil)

	descQueuePublished = prometheus.NewDesc("rabbitmq_queue_messages_published_total",
		"Messages published to the queue.", queueLabels, nil)
	descQueueDelivered = prometheus.NewDesc("rabbitmq_queue_messages_delivered_total",
		"Deliveries to consumers and basic.get, redeliveries included.", queueLabels, nil)
	descQueueRedelivered = prometheus.NewDesc("rabbitmq_queue_messages_redelivered_total",
		"Deliveries of messages delivered before.", queueLabels, nil)
	descQueueAcked = prometheus.NewDesc("rabbitmq_queue_messages_acked_total",
		"Deliveries acknowledged.", queueLabels, nil)
	descQueueDeadLettered = prometheus.NewDesc("rabbitmq_queue_messages_dead_lettered_total",
		"Messages dead-lettered from the queue.", queueLabels, nil)

	descConnections = prometheus.NewDesc("yard_connections",
		"Live client connections, per protocol.", []string{"protocol"}, nil)
	descRabbitConnections = prometheus.NewDesc("rabbitmq_connections",
		"Live AMQP connections.", nil, nil)
	descChannels = prometheus.NewDesc("yard_channels",
		"Open channels, per protocol (AMQP's; Kafka has none).", []string{"protocol"}, nil)
)

// Collector is the scrape-time collector of s's state.
type Collector struct{ s *Server }

// Collector returns the collector to register on the broker's registry.
func (s *Server) Collector() *Collector { return &Collector{s: s} }

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGroupLag, descGroupLagSum, descGroupLagTotal, descGroupOffset, descGroupMembers,
		descPartitions, descPartEnd, descPartStart, descPartSize,
		descQueueReady, descQueueUnacked, descQueueMessages, descQueueConsumers,
		descQueuePublished, descQueueDelivered, descQueueRedelivered, descQueueAcked, descQueueDeadLettered, descConnections, descRabbitConnections, descChannels} {
		ch <- d
	}
}

// Collect computes every gauge now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	itoa := func(i int32) string { return formatInt(int64(i)) }
	if s.cfg.Streams != nil {
		for _, t := range s.cfg.Streams.Topics() {
			ps := t.Partitions()
			gauge(descPartitions, float64(len(ps)), t.Name)
			for _, p := range ps {
				idx := itoa(p.Index)
				gauge(descPartEnd, float64(p.EndOffset()), t.Name, idx)
				gauge(descPartStart, float64(p.StartOffset()), t.Name, idx)
				gauge(descPartSize, float64(p.Size()), t.Name, idx)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if gls, err := s.lag(ctx); err == nil {
		for _, gl := range gls {
			var total int64
			members := 0
			byTopic := map[string]int64{}
			for _, p := range gl.Partitions {
				idx := itoa(p.Partition)
				if p.Committed >= 0 {
					gauge(descGroupOffset, float64(p.Committed), gl.Group, p.Topic, idx)
				}
				if p.HasAssignee {
					members++
				}
				if p.Lag < 0 {
					continue
				}
				gauge(descGroupLag, float64(p.Lag), gl.Group, p.Topic, idx)
				byTopic[p.Topic] += p.Lag
				total += p.Lag
			}
			for t, l := range byTopic {
				gauge(descGroupLagSum, float64(l), gl.Group, t)
			}
			gauge(descGroupLagTotal, float64(total), gl.Group)
			gauge(descGroupMembers, float64(members), gl.Group)
		}
	} else {
		s.log.Warn("cannot collect consumer group lag", "err", err)
	}
	if s.cfg.VHosts != nil {
		for _, n := range s.cfg.VHosts.Names() {
			v := s.cfg.VHosts.Get(n)
			if v == nil {
				continue // deleted meanwhile
			}
			for _, q := range v.Queues() {
				ready, unacked, consumers := q.Counts()
				gauge(descQueueReady, float64(ready), n, q.Name())
				gauge(descQueueUnacked, float64(unacked), n, q.Name())
				gauge(descQueueMessages, float64(ready+unacked), n, q.Name())
				gauge(descQueueConsumers, float64(consumers), n, q.Name())
				st := q.Stats()
				counter(descQueuePublished, st.Published, n, q.Name())
				counter(descQueueDelivered, st.Delivered, n, q.Name())
				counter(descQueueRedelivered, st.Redelivered, n, q.Name())
				counter(descQueueAcked, st.Acked, n, q.Name())
				counter(descQueueDeadLettered, st.DeadLettered, n, q.Name())
			}
		}
	}
	byProto := map[string]int{"kafka": 0, "amqp": 0}
	for _, ci := range s.connections() {
		byProto[ci.Protocol]++
	}
	for p, n := range byProto {
		gauge(descConnections, float64(n), p)
	}
	gauge(descRabbitConnections, float64(byProto["amqp"]))
	if s.cfg.AMQP != nil {
		gauge(descChannels, float64(s.cfg.AMQP.Channels()), "amqp")
	}
}
