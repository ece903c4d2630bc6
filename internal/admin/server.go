// Package admin is yard's HTTP admin plane: /healthz, /metrics (Prometheus), optionally Go's
// profiler, and the RabbitMQ-shaped management API under /api/ (users, permissions,
// vhosts, limits, whoami here; one file per resource family), with HTTP basic auth against
// the user store (auth.go). api.go routes the rest: overview.go, queues.go, exchanges.go
// (and bindings), messages.go (publishing and getting messages), connections.go, channels.go (channels and consumers), nodes.go (the node's figures), kafka.go (/api/kafka/topics and groups with lag) over the
// broker's state, and metrics.go, the scrape-time Prometheus collector. Tools written for
// RabbitMQ's management plugin (rabbitmqadmin, monitoring plugins, KEDA's scaler) read it
// unchanged. Errors are RabbitMQ's JSON: {"error": "...", "reason": "..."}.
package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/ratelog"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

// Config configures the admin plane.
type Config struct {
	Users   *auth.Store  // required for /api/
	Metrics http.Handler // /metrics; nil: not served
	Pprof   bool         // serve Go's profiler under /debug/pprof/
	Logger  *slog.Logger
	// LoopbackUsers may authenticate only from loopback addresses (RabbitMQ's
	// loopback_users); nil means {"guest"}.
	LoopbackUsers []string

	// The broker's state the rest of the API shows (api.go); any may be nil (that front end
	// is disabled): its endpoints then list nothing.
	VHosts  *vhost.Hosts
	Streams *stream.Manager
	Groups  *group.Coordinator
	Conns   *listener.Registry
	AMQP    AMQPChannels // /api/channels, /api/consumers, yard_channels
	Ready   func() bool  // /readyz; nil: always ready
	Version string       // yard's version, in /api/overview
	Node    string       // this node's name, as RabbitMQ's "rabbit@host"
	// Resources measures memory and free disk against the AMQP resource alarms' limits
	// (/api/nodes); nil: memory is measured here, disk is not.
	Resources func() amqp.Resources
}

// Server is the admin plane's HTTP handler.
type Server struct {
	cfg Config
	log *slog.Logger
	rl  *ratelog.Limiter
	mux *http.ServeMux
	// rates derives message_stats rates from queue counters (rates.go).
	rates rates
	// sessions and xorigin: the console's login sessions and CSRF checks (session.go).
	sessions *sessions
	xorigin  *http.CrossOriginProtection
	// connRates derives connections' byte rates (rates.go).
	connRates byteRates
	// started is when the server was built: the node's uptime in /api/nodes.
	started time.Time
}

// maxBodyBytes bounds a request body.
const maxBodyBytes = 1 << 20

// New builds the handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Node == "" {
		cfg.Node = "yard@localhost"
	}
	if cfg.LoopbackUsers == nil {
		cfg.LoopbackUsers = []string{"guest"}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, 0), mux: http.NewServeMux(),
		rates:    rates{by: map[*vhost.Queue]*[2]rateSample{}, now: time.Now},
		sessions: newSessions(), xorigin: http.NewCrossOriginProtection(),
		started: time.Now(), connRates: byteRates{now: time.Now}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil && !cfg.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Pprof {
		// Off by default: profiles reveal internals and cost CPU while they run. With it on,
		// contended locks and blocking (over 100 µs) are sampled too, for /debug/pprof/mutex
		// and /debug/pprof/block.
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(100 * time.Microsecond))
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	if cfg.Users != nil {
		s.routeUsers()
		s.routePermissions()
		s.routeVhosts()
		s.routeAPI()
		s.routeMessages()
		s.routePolicies()
		s.routeConsole()
		s.routeGroupReset()
		s.mux.Handle("GET /api/whoami", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, u auth.User) {
			writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "tags": tagsOf(u)})
		}))
	}
	s.mux.HandleFunc("/api/", s.unrouted)
	return s
}

// unrouted answers an /api/ request no route took: 405 with Allow when the path is served
// for other methods, else 404; both in RabbitMQ's error shape.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := s.mux.Handler(r2); pattern != "" && pattern != "/api/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		notFound(w)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", r.Method+" is not allowed here: "+strings.Join(allow, ", ")+" is")
}

// ServeHTTP serves the admin plane.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Names in paths may hold "/" written %2F (the vhost "/" is /api/vhosts/%2F, as in
	// RabbitMQ's API); ServeMux would split on it, so it travels as NUL (which no name may
	// contain) until pathValue turns it back.
	if raw := r.URL.RawPath; raw != "" && strings.Contains(strings.ToUpper(raw), "%2F") {
		if p, err := url.PathUnescape(slashRE.ReplaceAllString(raw, "%00")); err == nil {
			r2 := *r
			u := *r.URL
			u.Path, u.RawPath = p, ""
			r2.URL = &u
			r = &r2
		}
	}
	s.mux.ServeHTTP(w, r)
}

var slashRE = regexp.MustCompile(`%2[fF]`)

// pathValue is r.PathValue with "/" restored (see ServeHTTP).
func pathValue(r *http.Request, name string) string {
	return strings.ReplaceAll(r.PathValue(name), "\x00", "/")
}

// Handle registers another endpoint (for the rest of the management API).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers RabbitMQ's error shape.
func writeError(w http.ResponseWriter, code int, errText, reason string) {
	writeJSON(w, code, map[string]string{"error": errText, "reason": reason})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Object Not Found", "Not Found")
}

func badRequest(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusBadRequest, "bad_request", reason)
}

// storeError maps a store error to RabbitMQ's status and shape.
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		notFound(w)
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrExists):
		badRequest(w, err.Error())
	case errors.Is(err, auth.ErrConflict): // changed concurrently through another cluster node
		writeError(w, http.StatusConflict, "conflict", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
	}
}

// readBody decodes a JSON body into v; an empty body leaves v as it is.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		badRequest(w, "cannot read the request body: "+err.Error())
		return false
	}
	if len(data) == 0 {
		return true
	}
	if err := json.Unmarshal(data, v); err != nil {
		badRequest(w, "cannot decode the request body as JSON: "+err.Error())
		return false
	}
	return true
}
