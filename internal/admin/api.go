package admin

// Routes of the management API over the broker's state (AMQP resources, connections, Kafka
// topics and groups). Reads need any management tag, changes need administrator.

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/vhost"
)

func (s *Server) routeAPI() {
	h := func(need level, f http.HandlerFunc) http.Handler {
		return s.authed(need, func(w http.ResponseWriter, r *http.Request, _ auth.User) { f(w, r) })
	}
	m := s.mux
	m.Handle("GET /api/overview", h(anyTag, s.overview))
	m.Handle("GET /api/aliveness-test/{vhost}", h(anyTag, s.aliveness))

	m.Handle("GET /api/queues", h(anyTag, s.listQueues))
	m.Handle("GET /api/queues/{vhost}", h(anyTag, s.listQueues))
	m.Handle("GET /api/queues/{vhost}/{name}", h(anyTag, s.getQueue))
	m.Handle("PUT /api/queues/{vhost}/{name}", h(admin, s.putQueue))
	m.Handle("DELETE /api/queues/{vhost}/{name}", h(admin, s.deleteQueue))
	m.Handle("DELETE /api/queues/{vhost}/{name}/contents", h(admin, s.purgeQueue))
	m.Handle("GET /api/queues/{vhost}/{name}/bindings", h(anyTag, s.queueBindings))

	m.Handle("GET /api/exchanges", h(anyTag, s.listExchanges))
	m.Handle("GET /api/exchanges/{vhost}", h(anyTag, s.listExchanges))
	m.Handle("GET /api/exchanges/{vhost}/{name}", h(anyTag, s.getExchange))
	m.Handle("PUT /api/exchanges/{vhost}/{name}", h(admin, s.putExchange))
	m.Handle("DELETE /api/exchanges/{vhost}/{name}", h(admin, s.deleteExchange))

	m.Handle("GET /api/bindings", h(anyTag, s.listBindings))
	m.Handle("GET /api/bindings/{vhost}", h(anyTag, s.listBindings))

	m.Handle("POST /api/bindings/{vhost}/e/{source}/{dtype}/{dest}", h(admin, s.createBinding))
	m.Handle("GET /api/bindings/{vhost}/e/{source}/{dtype}/{dest}", h(anyTag, s.listBindingsBetween))
	m.Handle("DELETE /api/bindings/{vhost}/e/{source}/{dtype}/{dest}/{props}", h(admin, s.deleteBinding))

	m.Handle("GET /api/definitions", h(admin, s.exportDefinitions))
	m.Handle("POST /api/definitions", h(admin, s.importDefinitions))

	m.Handle("GET /api/connections", h(anyTag, s.listConnections))
	m.Handle("GET /api/connections/{name}", h(anyTag, s.getConnection))
	m.Handle("DELETE /api/connections/{name}", h(admin, s.closeConnection))
	m.Handle("GET /api/connections/{name}/channels", h(anyTag, s.connectionChannels))
	m.Handle("GET /api/channels", h(anyTag, s.listChannels))
	m.Handle("GET /api/channels/{name}", h(anyTag, s.getChannel))
	m.Handle("GET /api/nodes", h(anyTag, s.listNodes))
	m.Handle("GET /api/nodes/{name}", h(anyTag, s.getNode))
	m.Handle("GET /api/consumers", h(anyTag, s.listConsumers))
	m.Handle("GET /api/consumers/{vhost}", h(anyTag, s.listConsumers))

	m.Handle("GET /api/kafka/topics", h(anyTag, s.listTopics))
	m.Handle("GET /api/kafka/topics/{name}", h(anyTag, s.getTopic))
	m.Handle("GET /api/kafka/groups", h(anyTag, s.listGroups))
	m.Handle("GET /api/kafka/groups/{name}", h(anyTag, s.getGroup))
}

// domainError maps a refusal of the vhost domain to RabbitMQ's management status codes.
func domainError(w http.ResponseWriter, err error) {
	var ve *vhost.Error
	switch {
	case errors.As(err, &ve) && errors.Is(err, vhost.ErrNotFound):
		writeError(w, http.StatusNotFound, "Object Not Found", ve.Detail)
	case errors.As(err, &ve) && !errors.Is(err, vhost.ErrInternal):
		// RabbitMQ answers inequivalent or refused declarations with 400 and the channel's text.
		writeError(w, http.StatusBadRequest, "bad_request", ve.Detail)
	default:
		writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
	}
}

// vhostOf returns the request's {vhost}, or writes 404 and returns nil.
func (s *Server) vhostOf(w http.ResponseWriter, r *http.Request) *vhost.VHost {
	var v *vhost.VHost
	if s.cfg.VHosts != nil {
		v = s.cfg.VHosts.Get(pathValue(r, "vhost"))
	}
	if v == nil {
		notFound(w)
	}
	return v
}

// vhosts returns the vhosts a listing covers: {vhost} if given (nil, false after a 404),
// else all, sorted by name.
func (s *Server) vhosts(w http.ResponseWriter, r *http.Request) ([]*vhost.VHost, bool) {
	if r.PathValue("vhost") != "" {
		v := s.vhostOf(w, r)
		if v == nil {
			return nil, false
		}
		return []*vhost.VHost{v}, true
	}
	if s.cfg.VHosts == nil {
		return nil, true
	}
	names := s.cfg.VHosts.Names()
	slices.Sort(names)
	var out []*vhost.VHost
	for _, n := range names {
		if v := s.cfg.VHosts.Get(n); v != nil {
			out = append(out, v)
		}
	}
	return out, true
}

func formatInt(i int64) string { return strconv.FormatInt(i, 10) }
