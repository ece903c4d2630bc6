package admin

// HTTP basic auth, or the console's session (session.go), against the user store, as
// RabbitMQ's management plugin: the user must carry a tag allowing the endpoint
// (administrator for every change; monitoring or administrator for reads of users,
// permissions and limits; any management tag for the rest). A failure is 401 with RabbitMQ's body and a WWW-Authenticate challenge, answered
// after the source's failure delay, and logged rate-limited (without the password).

import (
	"net"
	"net/http"
	"slices"

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

func loopbackAllowed(loopbackUsers []string, name, src string) bool {
	ip := net.ParseIP(src)
	return !slices.Contains(loopbackUsers, name) || (ip != nil && ip.IsLoopback())
}

// authed authenticates a request by HTTP basic auth (tools) or by the console's session
// cookie (session.go), refuses cross-origin browser requests that change state and, for
// the session, those without its CSRF token, then checks the user's tags against need.
func (s *Server) authed(need level, h func(http.ResponseWriter, *http.Request, auth.User)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) {
			if err := s.xorigin.Check(r); err != nil {
				writeError(w, http.StatusForbidden, "forbidden", "Cross-origin request refused")
				return
			}
		}
		var u auth.User
		if name, pass, ok := r.BasicAuth(); ok {
			var reason string
			if u, ok, reason = s.checkLogin(r, name, pass, "basic"); !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
				writeError(w, http.StatusUnauthorized, "not_authorised", reason)
				return
			}
		} else if su, sess, reason, ok := s.fromSession(r); ok {
			if sess == nil {
				// No challenge: the console's fetches would raise the browser's prompt.
				writeError(w, http.StatusUnauthorized, "not_authorised", reason)
				return
			}
			if !csrfOK(r, sess) {
				writeError(w, http.StatusForbidden, "forbidden", "Missing or wrong "+csrfHeader+" header")
				return
			}
			u = su
		} else {
			if r.Header.Get(csrfHeader) == "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
			}
			writeError(w, http.StatusUnauthorized, "not_authorised", "Login failed")
			return
		}
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
