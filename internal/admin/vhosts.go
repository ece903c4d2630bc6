package admin

// Virtual hosts and vhost limits, in the shapes of RabbitMQ's management API:
//
//	GET    /api/vhosts                        [{"name", "description", "tracing"}]
//	GET    /api/vhosts/{name}                 one vhost; 404 if none
//	PUT    /api/vhosts/{name}                 {"description": "..."}: 201 created, 204 if it exists
//	DELETE /api/vhosts/{name}                 204 (its queues, exchanges and messages go too)
//	GET    /api/vhost-limits                  [{"vhost", "value": {"max-connections": N, "max-queues": N}}]
//	GET    /api/vhost-limits/{vhost}
//	PUT    /api/vhost-limits/{vhost}/{name}   {"value": N}: 204
//	DELETE /api/vhost-limits/{vhost}/{name}   204
//
// Listing vhosts needs any management tag; changes need administrator.

import (
	"errors"
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

func vhostJSON(v auth.Vhost) map[string]any {
	return map[string]any{"name": v.Name, "description": v.Description, "tracing": false}
}

func (s *Server) routeVhosts() {
	users := s.cfg.Users
	s.mux.Handle("GET /api/vhosts", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		out := []map[string]any{}
		for _, v := range users.Vhosts() {
			// As RabbitMQ: a user who is not an administrator or monitor sees the vhosts it
			// has permissions in.
			if monitor.allows(u) || users.CanAccessVhost(u.Name, v.Name) {
				out = append(out, vhostJSON(v))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.mux.Handle("GET /api/vhosts/{name}", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		name := pathValue(r, "name")
		for _, v := range users.Vhosts() {
			if v.Name == name && (monitor.allows(u) || users.CanAccessVhost(u.Name, v.Name)) {
				writeJSON(w, http.StatusOK, vhostJSON(v))
				return
			}
		}
		notFound(w)
	}))
	s.mux.Handle("PUT /api/vhosts/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		var body struct {
			Description string `json:"description"`
		}
		if !readBody(w, r, &body) {
			return
		}
		err := users.AddVhost(pathValue(r, "name"), body.Description)
		switch {
		case errors.Is(err, auth.ErrExists):
			w.WriteHeader(http.StatusNoContent)
		case err != nil:
			storeError(w, err)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	s.mux.Handle("DELETE /api/vhosts/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		if err := users.DeleteVhost(pathValue(r, "name")); err != nil {
			storeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	limitsOf := func(v auth.Vhost) map[string]any { return limitsJSON("vhost", v.Name, v.Limits) }
	s.mux.Handle("GET /api/vhost-limits", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		out := []map[string]any{}
		for _, v := range users.Vhosts() {
			if len(v.Limits) > 0 {
				out = append(out, limitsOf(v))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.mux.Handle("GET /api/vhost-limits/{vhost}", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		name := pathValue(r, "vhost")
		for _, v := range users.Vhosts() {
			if v.Name == name {
				out := []map[string]any{}
				if len(v.Limits) > 0 {
					out = append(out, limitsOf(v))
				}
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
		notFound(w)
	}))
	s.routeLimitWrites("vhost", users.SetVhostLimit)
}
