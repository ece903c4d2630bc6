package admin

// AMQP permissions, in the shapes of RabbitMQ's management API:
//
//	GET    /api/permissions                  [{"user", "vhost", "configure", "write", "read"}]
//	GET    /api/permissions/{vhost}/{user}   one entry; 404 if none
//	PUT    /api/permissions/{vhost}/{user}   {"configure", "write", "read"}: 201 created, 204 updated
//	DELETE /api/permissions/{vhost}/{user}   204
//	GET    /api/vhosts/{name}/permissions    the vhost's entries
//
// The vhost "/" is written %2F in paths, as RabbitMQ's.

import (
	"net/http"

	"github.com/yardmq/yard/internal/auth"
)

func permJSON(p auth.UserPermission) map[string]string {
	return map[string]string{"user": p.User, "vhost": p.Vhost, "configure": p.Configure, "write": p.Write, "read": p.Read}
}

func (s *Server) routePermissions() {
	users := s.cfg.Users
	routeList(s, "GET /api/permissions", users.Permissions, permJSON)
	s.mux.Handle("GET /api/permissions/{vhost}/{user}", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		vh, user := pathValue(r, "vhost"), pathValue(r, "user")
		p, ok := users.Permission(user, vh)
		if !ok {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, permJSON(auth.UserPermission{User: user, Vhost: vh, Permission: p}))
	}))
	s.mux.Handle("PUT /api/permissions/{vhost}/{user}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		var body auth.Permission
		if !readBody(w, r, &body) {
			return
		}
		vh, user := pathValue(r, "vhost"), pathValue(r, "user")
		if _, ok := users.User(user); !ok {
			badRequest(w, "user '"+user+"' does not exist")
			return
		}
		if !users.HasVhost(vh) {
			badRequest(w, "vhost '"+vh+"' does not exist")
			return
		}
		_, existed := users.Permission(user, vh)
		if err := users.SetPermission(user, vh, body); err != nil {
			storeError(w, err)
			return
		}
		if existed {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	s.mux.Handle("DELETE /api/permissions/{vhost}/{user}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		if err := users.ClearPermission(pathValue(r, "user"), pathValue(r, "vhost")); err != nil {
			storeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.Handle("GET /api/vhosts/{name}/permissions", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		vh := pathValue(r, "name")
		if !users.HasVhost(vh) {
			notFound(w)
			return
		}
		out := []map[string]string{}
		for _, p := range users.Permissions() {
			if p.Vhost == vh {
				out = append(out, permJSON(p))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
}
