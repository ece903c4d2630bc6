package broker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpReadHeaderTimeout bounds slow clients on the admin port.
const httpReadHeaderTimeout = 10 * time.Second

// openHTTP prepares the admin plane. For now: /healthz (200 once the broker is serving: it
// serves after every other front end has opened) and /metrics (Prometheus, process and Go
// runtime metrics); the admin API and console come later.
func (b *Broker) openHTTP() (*frontEnd, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if b.cfg.HTTPPprof {
		// Off by default: profiles reveal internals and cost CPU while they run. With it on,
		// contended locks and blocking (over 100 µs) are sampled too, for /debug/pprof/mutex
		// and /debug/pprof/block.
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpReadHeaderTimeout}
	return &frontEnd{
		serve: func(ln net.Listener) func(context.Context) error {
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					b.log.Error("http server stopped", "err", err)
				}
			}()
			return srv.Shutdown
		},
		abort: func() error { return nil },
	}, nil
}
