package admin

// Users and user limits, in the shapes of RabbitMQ's management API:
//
//	GET    /api/users                        [{"name", "tags": [...], "hashing_algorithm", "limits"}]
//	GET    /api/users/{name}                 one user; 404 if none
//	PUT    /api/users/{name}                 {"password": "...", "tags": "administrator,monitoring"}: 201 created, 204 updated
//	DELETE /api/users/{name}                 204
//	GET    /api/users/{name}/permissions     the user's permissions in every vhost
//	GET    /api/user-limits                  [{"user", "value": {"max-connections": N, ...}}]
//	GET    /api/user-limits/{user}
//	PUT    /api/user-limits/{user}/{name}    {"value": N}: 204
//	DELETE /api/user-limits/{user}/{name}    204
//
// No password or hash is ever returned.

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/yardmq/yard/internal/auth"
)

func userJSON(u auth.User) map[string]any {
	limits := map[string]int64{}
	for k, v := range u.Limits {
		limits[k] = v
	}
	return map[string]any{"name": u.Name, "tags": tagsOf(u), "hashing_algorithm": "rabbit_password_hashing_scram", "limits": limits}
}

// tagsField accepts RabbitMQ's "a,b" string or a JSON array.
type tagsField []string

func (t *tagsField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = strings.Split(s, ",")
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*t = a
	return nil
}

func (s *Server) routeUsers() {
	users := s.cfg.Users
	routeList(s, "GET /api/users", users.Users, userJSON)
	s.mux.Handle("GET /api/users/{name}", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		u, ok := users.User(pathValue(r, "name"))
		if !ok {
			notFound(w)
			return
		}
		writeJSON(w, http.StatusOK, userJSON(u))
	}))
	s.mux.Handle("PUT /api/users/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		var body struct {
			Password     *string   `json:"password"`
			PasswordHash *string   `json:"password_hash"`
			Tags         tagsField `json:"tags"`
		}
		if !readBody(w, r, &body) {
			return
		}
		if body.PasswordHash != nil && body.Password == nil {
			badRequest(w, "password_hash is not supported: yard stores SCRAM credentials; give password")
			return
		}
		created, err := users.PutUser(pathValue(r, "name"), body.Password, body.Tags)
		if err != nil {
			storeError(w, err)
			return
		}
		if created {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.Handle("DELETE /api/users/{name}", s.authed(admin, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		if err := users.DeleteUser(pathValue(r, "name")); err != nil {
			storeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.Handle("GET /api/users/{name}/permissions", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		name := pathValue(r, "name")
		if _, ok := users.User(name); !ok {
			notFound(w)
			return
		}
		out := []map[string]string{}
		for _, p := range users.Permissions() {
			if p.User == name {
				out = append(out, permJSON(p))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	limitsOf := func(u auth.User) map[string]any { return limitsJSON("user", u.Name, u.Limits) }
	s.mux.Handle("GET /api/user-limits", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		out := []map[string]any{}
		for _, u := range users.Users() {
			if len(u.Limits) > 0 {
				out = append(out, limitsOf(u))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.mux.Handle("GET /api/user-limits/{user}", s.authed(monitor, func(w http.ResponseWriter, r *http.Request, _ auth.User) {
		u, ok := users.User(pathValue(r, "user"))
		if !ok {
			notFound(w)
			return
		}
		out := []map[string]any{}
		if len(u.Limits) > 0 {
			out = append(out, limitsOf(u))
		}
		writeJSON(w, http.StatusOK, out)
	}))
	s.routeLimitWrites("user", users.SetUserLimit)
}
