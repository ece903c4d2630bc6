package admin

import (
	"net/http"
	"strings"
	"testing"
)

// The console's files are embedded, served behind the API's authentication, and / leads
// to them. (test/interop/console drives them in a browser.)
func TestConsoleServed(t *testing.T) {
	ts, _ := newTestServer(t)
	if code, body := call(t, ts, "GET", "/console/", "", "", ""); code != http.StatusOK || !strings.Contains(body, `action="/console/login"`) {
		t.Fatalf("the console without credentials: %d, want the login page", code)
	}
	if code, _ := call(t, ts, "GET", "/console/app.js", "", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("the console's script without credentials: %d, want 401", code)
	}
	if code, _ := call(t, ts, "GET", "/console/app.js", "mon", "wrong", ""); code != http.StatusUnauthorized {
		t.Fatalf("the console with a wrong password: %d, want 401", code)
	}
	for path, want := range map[string]string{
		"/console/":                         "<title>yard console</title>",
		"/console/app.js":                   "POLL_MS",
		"/console/style.css":                "--accent",
		"/console/vendor/uPlot.iife.min.js": "uPlot",
		"/console/vendor/uPlot.LICENSE":     "MIT",
	} {
		code, body := call(t, ts, "GET", path, "mon", "mon-pw", "")
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, code, want)
		}
	}
	if code, _ := call(t, ts, "GET", "/console/nothing-here.js", "mon", "mon-pw", ""); code != http.StatusNotFound {
		t.Errorf("a missing console file: %d, want 404", code)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/console/", nil)
	req.SetBasicAuth("mon", "mon-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("the console's Content-Security-Policy: %q", csp)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = client.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Errorf("GET /: %d to %q, want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
}
