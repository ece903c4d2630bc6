package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/yardmq/yard/internal/auth"
)

func newTestServer(t *testing.T) (*httptest.Server, *auth.Store) {
	t.Helper()
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mon := "mon-pw"
	if _, err := users.PutUser("mon", &mon, []string{"monitoring"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(Config{Users: users}))
	t.Cleanup(ts.Close)
	return ts, users
}

func call(t *testing.T, ts *httptest.Server, method, path, user, pass, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminAPI(t *testing.T) {
	ts, users := newTestServer(t)
	expect := func(method, path, user, pass, body string, code int, contains string) string {
		t.Helper()
		got, out := call(t, ts, method, path, user, pass, body)
		if got != code || !strings.Contains(out, contains) {
			t.Fatalf("%s %s as %q: %d %s, want %d containing %q", method, path, user, got, out, code, contains)
		}
		return out
	}
	expect("GET", "/healthz", "", "", "", 200, "ok")
	expect("GET", "/api/users", "", "", "", 401, `"error":"not_authorised","reason":"Login failed"`)
	expect("GET", "/api/users", "guest", "wrong", "", 401, `"not_authorised"`)
	expect("GET", "/api/whoami", "guest", "guest", "", 200, `{"name":"guest","tags":["administrator"]}`)
	expect("GET", "/api/users", "mon", "mon-pw", "", 200, `"name":"guest"`)
	expect("PUT", "/api/users/alice", "mon", "mon-pw", `{"password":"a","tags":""}`, 401, "Not administrator user")
	expect("PUT", "/api/users/alice", "guest", "guest", `{"password":"a-pw","tags":"management"}`, 201, "")
	expect("PUT", "/api/users/alice", "guest", "guest", `{"tags":"management,monitoring"}`, 204, "")
	if err := users.Authenticate("alice", "a-pw"); err != nil {
		t.Fatalf("created user cannot log in: %v", err)
	}
	out := expect("GET", "/api/users/alice", "guest", "guest", "", 200, `"tags":["management","monitoring"]`)
	if strings.Contains(out, "a-pw") || strings.Contains(out, "stored_key") {
		t.Fatalf("secret in %s", out)
	}
	expect("GET", "/api/users/nobody", "guest", "guest", "", 404, `{"error":"Object Not Found","reason":"Not Found"}`)
	expect("PUT", "/api/vhosts/v1", "guest", "guest", `{"description":"d"}`, 201, "")
	expect("PUT", "/api/vhosts/v1", "guest", "guest", ``, 204, "")
	expect("GET", "/api/vhosts", "alice", "a-pw", "", 200, `"name":"v1"`)
	expect("PUT", "/api/permissions/v1/alice", "guest", "guest", `{"configure":"^a","write":".*","read":".*"}`, 201, "")
	expect("PUT", "/api/permissions/v1/alice", "guest", "guest", `{"configure":"^b","write":".*","read":".*"}`, 204, "")
	expect("PUT", "/api/permissions/nope/alice", "guest", "guest", `{"configure":"","write":"","read":""}`, 400, `"error":"bad_request"`)
	expect("PUT", "/api/permissions/v1/alice", "guest", "guest", `{"configure":"(","write":"","read":""}`, 400, `"error":"bad_request"`)
	expect("GET", "/api/permissions/v1/alice", "guest", "guest", "", 200, `"configure":"^b"`)
	expect("GET", "/api/permissions", "guest", "guest", "", 200, `{"configure":".*","read":".*","user":"guest","vhost":"/","write":".*"}`)
	expect("GET", "/api/permissions/%2F/guest", "guest", "guest", "", 200, `"vhost":"/"`)
	expect("PUT", "/api/user-limits/alice/max-connections", "guest", "guest", `{"value":3}`, 204, "")
	expect("GET", "/api/user-limits", "guest", "guest", "", 200, `{"user":"alice","value":{"max-connections":3}}`)
	expect("PUT", "/api/vhost-limits/v1/max-queues", "guest", "guest", `{"value":10}`, 204, "")
	expect("PUT", "/api/vhost-limits/v1/bogus", "guest", "guest", `{"value":10}`, 400, "unknown limit")
	expect("GET", "/api/vhost-limits", "guest", "guest", "", 200, `{"value":{"max-queues":10},"vhost":"v1"}`)
	expect("DELETE", "/api/permissions/v1/alice", "guest", "guest", "", 204, "")
	expect("DELETE", "/api/vhosts/v1", "guest", "guest", "", 204, "")
	expect("DELETE", "/api/vhosts/v1", "guest", "guest", "", 404, "Not Found")
	expect("DELETE", "/api/users/alice", "guest", "guest", "", 204, "")
	expect("PUT", "/api/users/bad", "guest", "guest", `{nope`, 400, "bad_request")
	var list []map[string]any
	_, body := call(t, ts, "GET", "/api/vhosts", "guest", "guest", "")
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 1 {
		t.Fatalf("vhosts: %s", body)
	}
}
