package admin

import (
	"maps"
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

// routeList serves pattern (for the monitor tag) with every item list returns, as toJSON
// makes it: the users and permissions listings. An empty list is [], never null, as
// RabbitMQ's.
func routeList[T, J any](s *Server, pattern string, list func() []T, toJSON func(T) J) {
	s.mux.Handle(pattern, s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		out := []J{}
		for _, x := range list() {
			out = append(out, toJSON(x))
		}
		writeJSON(w, http.StatusOK, out)
	}))
}

// routeLimitWrites serves PUT and DELETE /api/{owner}-limits/{owner}/{name} (owner "user" or
// "vhost") for the admin tag: PUT {"value": n} sets the limit, DELETE clears it (set -1);
// both answer 204.
func (s *Server) routeLimitWrites(owner string, set func(owner, name string, value int64) error) {
	prefix := "/api/" + owner + "-limits/{" + owner + "}/{name}"
	s.mux.Handle("PUT "+prefix, s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		var body struct {
			Value *int64 `json:"value"`
		}
		if !readBody(w, r, &body) {
			return
		}
		if body.Value == nil {
			badRequest(w, "missing value")
			return
		}
		if err := set(pathValue(r, owner), pathValue(r, "name"), *body.Value); err != nil {
			storeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.Handle("DELETE "+prefix, s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		if err := set(pathValue(r, owner), pathValue(r, "name"), -1); err != nil {
			storeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// limitsJSON is one entry of /api/user-limits or /api/vhost-limits in RabbitMQ's shape:
// {"user"|"vhost": name, "value": {limit: n, ...}}. The limits are copied (the store's map
// must not be read while the response is encoded) and never null.
func limitsJSON(kind, name string, l auth.Limits) map[string]any {
	v := make(map[string]int64, len(l))
	maps.Copy(v, l)
	return map[string]any{kind: name, "value": v}
}
