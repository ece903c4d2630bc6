package admin

// Console sessions. The console's login page (GET /console/login) posts a user's name and
// password to POST /console/login; a success creates a server-side session and sets its id
// (256 random bits from crypto/rand, base64url) in the yard_session cookie: HttpOnly,
// SameSite=Strict, Path=/, Secure when the request came over TLS. The store keeps only a
// SHA-256 of each id. A session ends after sessionIdleTimeout without requests, after
// sessionMaxAge in any case, at POST /console/logout, when its user is deleted or their
// password changes; its user's tags are read again on every request, so a change of tags
// applies at once.
//
// Requests made with the cookie are checked against cross-site request forgery twice: every
// state-changing request (not GET, HEAD or OPTIONS) must carry the session's token in the
// X-CSRF-Token header (the console reads it from GET /console/session, which a page of
// another origin cannot read), and net/http's CrossOriginProtection refuses browser requests
// whose Sec-Fetch-Site or Origin say they come from another origin (applied to basic-auth
// requests too: a browser may have cached basic credentials). Tools keep using basic auth.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/auth"
)

// Session limits.
const (
	sessionCookie      = "yard_session"
	csrfHeader         = "X-CSRF-Token"
	sessionIdleTimeout = 30 * time.Minute
	sessionMaxAge      = 8 * time.Hour
	sessionsMax        = 10000 // sessions kept; beyond, the least recently used is dropped
	sessionIDBytes     = 32    // 256 bits
	loginBodyMaxBytes  = 64 << 10
)

type session struct {
	user    string
	cred    []byte // the user's stored key at login: a password change ends the session
	csrf    string
	created time.Time
	seen    time.Time
}

// sessions is the server-side session store; mu guards m.
type sessions struct {
	mu   sync.Mutex
	m    map[[sha256.Size]byte]*session
	now  func() time.Time
	idle time.Duration
	max  time.Duration
}

func newSessions() *sessions {
	return &sessions{m: map[[sha256.Size]byte]*session{}, now: time.Now, idle: sessionIdleTimeout, max: sessionMaxAge}
}

func randomToken() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// credFingerprint identifies a user's current password.
func credFingerprint(u auth.User) []byte {
	for _, m := range auth.Mechanisms {
		if c, ok := u.Credentials[m]; ok {
			return c.StoredKey
		}
	}
	return nil
}

// create starts a session for u and returns its id and CSRF token.
func (ss *sessions) create(u auth.User) (id string, sess *session) {
	id = randomToken()
	now := ss.now()
	sess = &session{user: u.Name, cred: credFingerprint(u), csrf: randomToken(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= sessionsMax {
		ss.expireLocked(now)
	}
	if len(ss.m) >= sessionsMax {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range ss.m {
			if at.IsZero() || v.seen.Before(at) {
				oldest, at = k, v.seen
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

func (ss *sessions) expireLocked(now time.Time) {
	for k, v := range ss.m {
		if ss.expired(v, now) {
			delete(ss.m, k)
		}
	}
}

func (ss *sessions) expired(v *session, now time.Time) bool {
	return now.Sub(v.seen) > ss.idle || now.Sub(v.created) > ss.max
}

// get returns the live session with this id (and marks it used), or nil.
func (ss *sessions) get(id string) *session {
	k := sha256.Sum256([]byte(id))
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	v := ss.m[k]
	if v == nil {
		return nil
	}
	if ss.expired(v, now) {
		delete(ss.m, k)
		return nil
	}
	v.seen = now
	c := *v
	return &c
}

func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	delete(ss.m, sha256.Sum256([]byte(id)))
	ss.mu.Unlock()
}

func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.m)
}

// fromSession authenticates a request by its session cookie: ok false if it has none; u
// zero and a reason if the session is unknown, expired or its user gone or changed.
func (s *Server) fromSession(r *http.Request) (u auth.User, sess *session, reason string, ok bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return auth.User{}, nil, "", false
	}
	sess = s.sessions.get(c.Value)
	if sess == nil {
		return auth.User{}, nil, "Session expired: log in again", true
	}
	u, found := s.cfg.Users.User(sess.user)
	if !found || subtle.ConstantTimeCompare(credFingerprint(u), sess.cred) != 1 {
		s.sessions.delete(c.Value)
		return auth.User{}, nil, "Session ended: the user was changed or deleted", true
	}
	return u, sess, "", true
}

// safeMethod: methods that change nothing (and need no CSRF token).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrfOK checks a session-authenticated request's token.
func csrfOK(r *http.Request, sess *session) bool {
	if safeMethod(r.Method) {
		return true
	}
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// routeSession serves the login page, login, logout and the session's description.
func (s *Server) routeSession() {
	s.mux.HandleFunc("GET /console/login", func(w http.ResponseWriter, r *http.Request) {
		s.loginPage(w, http.StatusOK, "")
	})
	s.mux.HandleFunc("POST /console/login", s.login)
	s.mux.HandleFunc("POST /console/logout", func(w http.ResponseWriter, r *http.Request) {
		_, sess, _, ok := s.fromSession(r)
		if ok && sess != nil && (!csrfOK(r, sess) || s.xorigin.Check(r) != nil) {
			writeError(w, http.StatusForbidden, "forbidden", "Missing or wrong "+csrfHeader)
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil {
			s.sessions.delete(c.Value)
		}
		setSessionCookie(w, r, "", -1)
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux.Handle("GET /console/session", s.authed(anyTag, func(w http.ResponseWriter, r *http.Request, u auth.User) {
		token := ""
		if _, sess, _, ok := s.fromSession(r); ok && sess != nil && r.Header.Get("Authorization") == "" {
			token = sess.csrf
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "tags": tagsOf(u), "csrf_token": token})
	}))
}

// login checks a posted user name and password (a form, as the login page posts it) and
// starts a session: 303 to the console; a failure is the login page again with 401, after
// the source's failure delay, logged rate-limited.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := s.xorigin.Check(r); err != nil {
		s.loginPage(w, http.StatusForbidden, "Cross-origin login refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, loginBodyMaxBytes)
	if err := r.ParseForm(); err != nil {
		s.loginPage(w, http.StatusBadRequest, "Malformed login form.")
		return
	}
	name, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	u, ok, reason := s.checkLogin(r, name, pass, "console")
	if !ok {
		s.loginPage(w, http.StatusUnauthorized, reason)
		return
	}
	if !anyTag.allows(u) {
		s.loginPage(w, http.StatusForbidden, "Not management user.")
		return
	}
	id, _ := s.sessions.create(u)
	setSessionCookie(w, r, id, int(sessionMaxAge/time.Second))
	s.log.Info("console login", "user", u.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// checkLogin verifies a name and password for the HTTP plane: a failure waits the source's
// failure delay and is logged (rate-limited, never the password); RabbitMQ's loopback
// users are refused from other addresses.
func (s *Server) checkLogin(r *http.Request, name, pass, via string) (auth.User, bool, string) {
	src := remoteHost(r)
	u, err := s.cfg.Users.CheckPassword(name, pass)
	if err != nil {
		s.rl.Info("admin login failed", "HTTP login failed", "via", via, "remote", r.RemoteAddr, "user", name)
		waitOrDone(r, s.cfg.Users.FailureDelay(src, name))
		return auth.User{}, false, "Login failed"
	}
	// A right password waits behind the failures queued for its source or user
	// (internal/auth): answered at once, its timing would tell it from a failure.
	d, ok := s.cfg.Users.LoginSucceeded(src, name)
	waitOrDone(r, d)
	if !ok { // too many failures queued: answered as one
		return auth.User{}, false, "Login failed"
	}
	if !loopbackAllowed(s.cfg.LoopbackUsers, name, src) {
		return auth.User{}, false, "User can only log in via localhost"
	}
	return u, true, ""
}

// waitOrDone waits d, or until r's client goes away.
func waitOrDone(r *http.Request, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
	}
}
