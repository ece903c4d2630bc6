package admin

// /api/policies and /api/operator-policies: yard has no policies (a queue's behaviour comes
// from its own x-arguments), so the listings are empty and setting one is refused with a
// reason that says what to do instead, rather than stored and silently not applied.

import (
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

// noPolicies is the reason a policy is refused.
const noPolicies = "yard has no policies: declare the queue with the x-arguments instead (x-max-length, x-message-ttl, x-dead-letter-exchange, x-queue-type, ...)"

func (s *Server) routePolicies() {
	empty := func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		if r.PathValue("vhost") != "" && s.vhostOf(w, r) == nil {
			return
		}
		writeJSON(w, http.StatusOK, []any{})
	}
	for _, kind := range []string{"policies", "operator-policies"} {
		s.mux.Handle("GET /api/"+kind, s.authed(anyTag, empty))
		s.mux.Handle("GET /api/"+kind+"/{vhost}", s.authed(anyTag, empty))
		s.mux.Handle("GET /api/"+kind+"/{vhost}/{name}", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
			if s.vhostOf(w, r) != nil {
				notFound(w)
			}
		}))
		s.mux.Handle("PUT /api/"+kind+"/{vhost}/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
			if s.vhostOf(w, r) != nil {
				badRequest(w, noPolicies)
			}
		}))
		s.mux.Handle("DELETE /api/"+kind+"/{vhost}/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
			if s.vhostOf(w, r) != nil {
				notFound(w)
			}
		}))
	}
}
