package admin

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/auth"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sessionServer is an admin server with guest (administrator), mon (monitoring) and nobody
// (no tags), on a fake clock for the sessions.
func sessionServer(t *testing.T, tlsOn bool) (*httptest.Server, *Server, *auth.Store, *fakeClock) {
	t.Helper()
	users, err := auth.Open(auth.Options{Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for name, tags := range map[string][]string{"mon": {"monitoring"}, "nobody": nil} {
		pw := name + "-pw"
		if _, err := users.PutUser(name, &pw, tags); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Users: users})
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s.sessions.now = clock.now
	var ts *httptest.Server
	if tlsOn {
		ts = httptest.NewTLSServer(s)
	} else {
		ts = httptest.NewServer(s)
	}
	t.Cleanup(ts.Close)
	return ts, s, users, clock
}

func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// loginAs posts the login form and returns the response (body read) and its session cookie.
func loginAs(t *testing.T, ts *httptest.Server, user, pass string, hdr map[string]string) (*http.Response, string, *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest("POST", ts.URL+"/console/login", strings.NewReader(url.Values{"username": {user}, "password": {pass}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects(ts.Client()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return resp, string(b), c
		}
	}
	return resp, string(b), nil
}

// withCookie sends a request with the session cookie and extra headers.
func withCookie(t *testing.T, ts *httptest.Server, method, path, cookie string, hdr map[string]string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects(ts.Client()).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusSeeOther {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

func csrfToken(t *testing.T, ts *httptest.Server, cookie string) (string, []string) {
	t.Helper()
	code, body := withCookie(t, ts, "GET", "/console/session", cookie, nil, "")
	if code != http.StatusOK {
		t.Fatalf("GET /console/session: %d %s", code, body)
	}
	var v struct {
		Name  string   `json:"name"`
		Tags  []string `json:"tags"`
		Token string   `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Token == "" {
		t.Fatalf("GET /console/session: %s (%v)", body, err)
	}
	return v.Token, v.Tags
}

func TestSessionLoginCookieAndCSRF(t *testing.T) {
	ts, s, _, _ := sessionServer(t, false)
	if code, loc := withCookie(t, ts, "GET", "/console/", "", nil, ""); code != http.StatusSeeOther || loc != "/console/login" {
		t.Fatalf("the console without a session: %d %q, want 303 to the login page", code, loc)
	}
	resp, _, c := loginAs(t, ts, "guest", "guest", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" || c == nil {
		t.Fatalf("login: %d to %q, cookie %v", resp.StatusCode, resp.Header.Get("Location"), c)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("session cookie over plain HTTP: %+v, want HttpOnly, SameSite=Strict, Path=/, not Secure", c)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(raw) != 32 {
		t.Errorf("session id %q: %d bytes (%v), want 256 random bits", c.Value, len(raw), err)
	}
	// A second login is another session with another id.
	if _, _, c2 := loginAs(t, ts, "guest", "guest", nil); c2 == nil || c2.Value == c.Value || s.sessions.len() != 2 {
		t.Errorf("a second login: cookie %v, %d sessions", c2, s.sessions.len())
	}

	if code, body := withCookie(t, ts, "GET", "/console/", c.Value, nil, ""); code != http.StatusOK || !strings.Contains(body, "yard console") {
		t.Fatalf("the console with the session: %d", code)
	}
	if code, body := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, ""); code != http.StatusOK {
		t.Fatalf("GET /api/overview with the session: %d %s", code, body)
	}
	token, tags := csrfToken(t, ts, c.Value)
	if len(tags) != 1 || tags[0] != "administrator" {
		t.Errorf("session tags %v", tags)
	}
	// State-changing requests with the cookie need the token.
	for _, h := range []map[string]string{nil, {csrfHeader: "wrong"}, {csrfHeader: token + "x"}} {
		if code, body := withCookie(t, ts, "PUT", "/api/vhosts/v1", c.Value, h, ""); code != http.StatusForbidden {
			t.Errorf("PUT with the cookie and token header %v: %d %s, want 403", h, code, body)
		}
	}
	// ... and must not come from another origin, token or not.
	for _, h := range []map[string]string{
		{csrfHeader: token, "Sec-Fetch-Site": "cross-site"},
		{csrfHeader: token, "Origin": "http://evil.example"},
	} {
		if code, body := withCookie(t, ts, "PUT", "/api/vhosts/v1", c.Value, h, ""); code != http.StatusForbidden {
			t.Errorf("cross-origin PUT %v: %d %s, want 403", h, code, body)
		}
	}
	if code, body := withCookie(t, ts, "PUT", "/api/vhosts/v1", c.Value, map[string]string{csrfHeader: token, "Sec-Fetch-Site": "same-origin"}, ""); code/100 != 2 {
		t.Fatalf("PUT with the cookie and its token: %d %s", code, body)
	}
	// Basic auth keeps working for tools (no token), and a basic-auth browser request from
	// another origin is refused too.
	if code, body := call(t, ts, "DELETE", "/api/vhosts/v1", "guest", "guest", ""); code/100 != 2 {
		t.Fatalf("DELETE with basic auth: %d %s", code, body)
	}
	req, _ := http.NewRequest("PUT", ts.URL+"/api/vhosts/v2", nil)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site PUT with basic auth: %v %v, want 403", resp.StatusCode, err)
	}

	// Logout needs the token, ends the session and clears the cookie.
	if code, _ := withCookie(t, ts, "POST", "/console/logout", c.Value, nil, ""); code != http.StatusForbidden {
		t.Errorf("logout without the token: %d, want 403", code)
	}
	if code, _ := withCookie(t, ts, "POST", "/console/logout", c.Value, map[string]string{csrfHeader: token}, ""); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if code, body := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, ""); code != http.StatusUnauthorized || !strings.Contains(body, "Session expired") {
		t.Errorf("the API after logout: %d %s, want 401", code, body)
	}
	if code, loc := withCookie(t, ts, "GET", "/console/", c.Value, nil, ""); code != http.StatusSeeOther || loc != "/console/login" {
		t.Errorf("the console after logout: %d %q, want the login page", code, loc)
	}
}

func TestSessionLoginRefused(t *testing.T) {
	ts, s, _, _ := sessionServer(t, false)
	for _, tc := range []struct {
		user, pass string
		code       int
		text       string
	}{
		{"guest", "wrong", http.StatusUnauthorized, "Login failed"},
		{"nobody-at-all", "x", http.StatusUnauthorized, "Login failed"},
		{"guest", "", http.StatusUnauthorized, "Login failed"},
		{"nobody", "nobody-pw", http.StatusForbidden, "Not management user"},
	} {
		resp, body, c := loginAs(t, ts, tc.user, tc.pass, nil)
		if resp.StatusCode != tc.code || c != nil || !strings.Contains(body, tc.text) || !strings.Contains(body, `action="/console/login"`) {
			t.Errorf("login %s/%q: %d cookie %v, want %d and the page with %q", tc.user, tc.pass, resp.StatusCode, c, tc.code, tc.text)
		}
	}
	if resp, _, c := loginAs(t, ts, "guest", "guest", map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden || c != nil {
		t.Errorf("a cross-site login: %d cookie %v, want 403", resp.StatusCode, c)
	}
	if s.sessions.len() != 0 {
		t.Errorf("%d sessions after refused logins", s.sessions.len())
	}
	if code, _ := withCookie(t, ts, "GET", "/api/overview", "made-up", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("a made-up session id: %d, want 401", code)
	}
}

// The session's tags are read on every request: a monitoring user reads but cannot act,
// and a change of tags applies at once.
func TestSessionTags(t *testing.T) {
	ts, _, users, _ := sessionServer(t, false)
	_, _, c := loginAs(t, ts, "mon", "mon-pw", nil)
	if c == nil {
		t.Fatal("no session for mon")
	}
	token, _ := csrfToken(t, ts, c.Value)
	h := map[string]string{csrfHeader: token}
	if code, _ := withCookie(t, ts, "GET", "/api/users/guest", c.Value, nil, ""); code != http.StatusOK {
		t.Errorf("monitoring reads a user: %d", code)
	}
	if code, body := withCookie(t, ts, "PUT", "/api/vhosts/v1", c.Value, h, ""); code != http.StatusUnauthorized || !strings.Contains(body, "Not administrator") {
		t.Errorf("monitoring changes: %d %s, want 401 Not administrator user", code, body)
	}
	if _, err := users.PutUser("mon", nil, []string{"administrator"}); err != nil {
		t.Fatal(err)
	}
	if code, body := withCookie(t, ts, "PUT", "/api/vhosts/v1", c.Value, h, ""); code/100 != 2 {
		t.Errorf("after the administrator tag: %d %s", code, body)
	}
	if _, err := users.PutUser("mon", nil, nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("after losing every tag: %d, want 401", code)
	}
}

// A password change or the user's deletion ends their sessions.
func TestSessionEndsWithTheUser(t *testing.T) {
	ts, _, users, _ := sessionServer(t, false)
	_, _, c := loginAs(t, ts, "mon", "mon-pw", nil)
	if err := users.SetPassword("mon", "new-pw"); err != nil {
		t.Fatal(err)
	}
	if code, _ := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("after a password change: %d, want 401", code)
	}
	_, _, c = loginAs(t, ts, "mon", "new-pw", nil)
	if err := users.DeleteUser("mon"); err != nil {
		t.Fatal(err)
	}
	if code, _ := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("after the user's deletion: %d, want 401", code)
	}
}

func TestSessionExpiry(t *testing.T) {
	ts, _, _, clock := sessionServer(t, false)
	ok := func(c *http.Cookie) bool {
		code, _ := withCookie(t, ts, "GET", "/api/overview", c.Value, nil, "")
		return code == http.StatusOK
	}
	// Idle: unused for longer than the idle timeout.
	_, _, c := loginAs(t, ts, "guest", "guest", nil)
	clock.add(sessionIdleTimeout - time.Second)
	if !ok(c) {
		t.Fatal("the session ended before its idle timeout")
	}
	clock.add(sessionIdleTimeout + time.Second)
	if ok(c) {
		t.Fatal("the session outlived its idle timeout")
	}
	// Absolute: used all along, it still ends after its maximum age.
	_, _, c = loginAs(t, ts, "guest", "guest", nil)
	for range int(sessionMaxAge / (sessionIdleTimeout / 2)) {
		if !ok(c) {
			t.Fatal("a session in use ended before its maximum age")
		}
		clock.add(sessionIdleTimeout / 2)
	}
	clock.add(time.Second)
	if ok(c) {
		t.Fatal("the session outlived its maximum age")
	}
}

func TestSessionCookieSecureOverTLS(t *testing.T) {
	ts, _, _, _ := sessionServer(t, true)
	_, _, c := loginAs(t, ts, "guest", "guest", nil)
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over TLS: %+v, want Secure, HttpOnly, SameSite=Strict", c)
	}
}

func TestSessionStoreBounded(t *testing.T) {
	ss := newSessions()
	u := auth.User{Name: "u"}
	first, _ := ss.create(u)
	for range sessionsMax {
		ss.create(u)
	}
	if ss.len() != sessionsMax || ss.get(first) != nil {
		t.Fatalf("%d sessions (max %d), the oldest kept: %v", ss.len(), sessionsMax, ss.get(first) != nil)
	}
}
