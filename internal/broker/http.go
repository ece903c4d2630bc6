package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/yardmq/yard/internal/admin"
	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/stream"
)

// httpReadHeaderTimeout bounds slow clients on the admin port.
const httpReadHeaderTimeout = 10 * time.Second

// openHTTP prepares the admin plane (internal/admin): /healthz (200 once the broker is
// serving: it serves after every other front end has opened), /metrics (Prometheus, process
// and Go runtime metrics, and the broker's state collected at scrape time: consumer lag,
// partition offsets, queue depths, connections) and the management API (RabbitMQ-shaped,
// plus /api/kafka/) over the user store and the broker's state.
func (b *Broker) openHTTP() (*frontEnd, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b.registerFileCacheMetrics(reg)
	b.registerCleanerMetrics(reg)
	var amqpChans admin.AMQPChannels
	var resources func() amqp.Resources
	if b.amqp != nil {
		amqpChans = b.amqp
		resources = b.amqp.Resources
	}
	mux := admin.New(admin.Config{
		Users:   b.users,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Pprof:   b.cfg.HTTPPprof,
		Logger:  b.log.With("component", "admin"),
		VHosts:  b.hosts,
		Streams: b.streamsNow(),
		Groups:  b.groups,
		Conns:   b.conns,
		AMQP:    amqpChans,
		Version: b.cfg.Version,
		Node:    fmt.Sprintf("yard@%d", b.cfg.NodeID),

		Resources: resources,
	})
	reg.MustRegister(mux.Collector())
	b.metrics.register(reg)
	if b.alarms != nil {
		alarm := func(disk bool) func() float64 {
			return func() float64 {
				m, d := b.alarms()
				if disk && d || !disk && m {
					return 1
				}
				return 0
			}
		}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rabbitmq_alarms_memory_used_watermark",
				Help: "1 while the memory alarm blocks publishers (--amqp-memory-high-watermark)."}, alarm(false)),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rabbitmq_alarms_free_disk_space_watermark",
				Help: "1 while the disk alarm blocks publishers (--amqp-disk-free-limit)."}, alarm(true)))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpReadHeaderTimeout}
	return &frontEnd{
		serve: func(lns []boundListener) func(context.Context) error {
			for _, l := range lns {
				ln := l.ln
				if l.tls {
					// HTTPS: the handshake runs on net/http's connection goroutine.
					ln = tls.NewListener(ln, b.tls.ServerConfig("http/1.1"))
				}
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						b.log.Error("http server stopped", "err", err)
					}
				}()
			}
			return srv.Shutdown
		},
		abort: func() error { return nil },
	}, nil
}

// registerFileCacheMetrics exposes the segment-file cache: a cache too small for the working
// set shows as a steadily growing eviction count.
func (b *Broker) registerFileCacheMetrics(reg *prometheus.Registry) {
	open := func() float64 { n, _, _ := b.files.Stats(); return float64(n) }
	opened := func() float64 { _, n, _ := b.files.Stats(); return float64(n) }
	evicted := func() float64 { _, _, n := b.files.Stats(); return float64(n) }
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "yard_segment_files_open",
			Help: "Log segment files open now."}, open),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "yard_segment_files_open_max",
			Help: "Bound on log segment files open at once (--max-open-segment-files)."},
			func() float64 { return float64(b.files.MaxOpenFiles()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_segment_files_opened_total",
			Help: "Log segment files opened."}, opened),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_segment_files_evicted_total",
			Help: "Log segment files closed to stay under the bound."}, evicted),
	)
}

// registerCleanerMetrics exposes what the log cleaner of compacted topics did since start.
func (b *Broker) registerCleanerMetrics(reg *prometheus.Registry) {
	stat := func(f func(stream.CleanerStats) int64) func() float64 {
		return func() float64 {
			b.streamsMu.Lock()
			s := b.streams
			b.streamsMu.Unlock()
			if s == nil {
				return 0
			}
			return float64(f(s.CleanerStats()))
		}
	}
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_log_cleaner_cleanings_total",
			Help: "Cleanings of compacted partitions that replaced segments."},
			stat(func(c stream.CleanerStats) int64 { return c.Passes })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_log_cleaner_segments_total",
			Help: "Segments the log cleaner replaced by cleaned ones."},
			stat(func(c stream.CleanerStats) int64 { return c.Segments })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_log_cleaner_records_removed_total",
			Help: "Records the log cleaner removed (superseded values and expired tombstones)."},
			stat(func(c stream.CleanerStats) int64 { return c.RecordsRemoved })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_log_cleaner_bytes_freed_total",
			Help: "Bytes of segments the log cleaner freed."},
			stat(func(c stream.CleanerStats) int64 { return c.BytesFreed })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "yard_log_cleaner_errors_total",
			Help: "Cleanings that failed (logged); the next round retries."},
			stat(func(c stream.CleanerStats) int64 { return c.Errors })),
	)
}

// streamsNow is the shared stream manager if a front end holds it open, else nil.
func (b *Broker) streamsNow() *stream.Manager {
	b.streamsMu.Lock()
	defer b.streamsMu.Unlock()
	return b.streams
}
