package admin

// HTTP basic auth against the user store, as RabbitMQ's management plugin: the user must
// carry a tag allowing the endpoint (administrator for every change; monitoring or
// administrator for reads of users, permissions and limits; any management tag for the
// rest). A failure is 401 with RabbitMQ's body and a WWW-Authenticate challenge, answered
// after the source's failure delay, and logged rate-limited (without the password).

import (
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/yardmq/yard/internal/auth"
)

// level is what an endpoint requires.
type level int

const (
	anyTag  level = iota // management, policymaker, monitoring or administrator
	monitor              // monitoring or administrator
	admin                // administrator
)

func tagsOf(u auth.User) []string {
	if u.Tags == nil {
		return []string{}
	}
	return u.Tags
}

func (l level) allows(u auth.User) bool {
	switch l {
	case admin:
		return u.HasTag(auth.TagAdministrator)
	case monitor:
		return u.HasTag(auth.TagAdministrator) || u.HasTag(auth.TagMonitoring)
	}
	return u.HasTag(auth.TagAdministrator) || u.HasTag(auth.TagMonitoring) || u.HasTag(auth.TagManagement) || u.HasTag("policymaker")
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) authed(need level, h func(http.ResponseWriter, *http.Request, auth.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, pass, ok := r.BasicAuth()
		src := remoteHost(r)
		var u auth.User
		var err error
		if ok {
			u, err = s.cfg.Users.CheckPassword(name, pass)
		}
		if !ok || err != nil {
			if ok {
				s.rl.Info("admin login failed", "HTTP API login failed", "remote", r.RemoteAddr, "user", name)
				t := time.NewTimer(s.cfg.Users.FailureDelay(src))
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
				}
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
			writeError(w, http.StatusUnauthorized, "not_authorised", "Login failed")
			return
		}
		if ip := net.ParseIP(src); slices.Contains(s.cfg.LoopbackUsers, name) && (ip == nil || !ip.IsLoopback()) {
			w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
			writeError(w, http.StatusUnauthorized, "not_authorised", "User can only log in via localhost")
			return
		}
		s.cfg.Users.LoginSucceeded(src)
		if !need.allows(u) {
			reason := "Not management user"
			switch need {
			case admin:
				reason = "Not administrator user"
			case monitor:
				reason = "Not monitor user"
			}
			writeError(w, http.StatusUnauthorized, "not_authorised", reason)
			return
		}
		h(w, r, u)
	})
}
