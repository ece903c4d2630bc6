package admin

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/yardmq/yard/internal/auth"
)

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Failed HTTP logins, basic auth and the console's login page alike, are slowed per source
// (the store's growing failure delay, shared with Kafka and AMQP) and logged, without the
// password.
func TestHTTPBruteForceSlowedAndLogged(t *testing.T) {
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out logBuf
	ts := httptest.NewServer(New(Config{Users: users, Logger: slog.New(slog.NewTextHandler(&out, nil))}))
	t.Cleanup(ts.Close)
	const guess = "guess-Zq81"
	for range 2 {
		if code, _ := call(t, ts, "GET", "/api/overview", "guest", guess, ""); code != http.StatusUnauthorized {
			t.Fatalf("basic auth with a wrong password: %d", code)
		}
	}
	if resp, _, c := loginAs(t, ts, "guest", guess, nil); resp.StatusCode != http.StatusUnauthorized || c != nil {
		t.Fatalf("console login with a wrong password: %d", resp.StatusCode)
	}
	n, delay := users.Failures("127.0.0.1")
	if n != 3 || delay != auth.FailureDelayMin<<2 {
		t.Fatalf("after 3 failed logins: %d failures recorded, last delayed %v; want 3 and %v", n, delay, auth.FailureDelayMin<<2)
	}
	logs := out.String()
	if !strings.Contains(logs, "HTTP login failed") || !strings.Contains(logs, "user=guest") {
		t.Errorf("failed logins not logged:\n%s", logs)
	}
	if strings.Contains(logs, guess) {
		t.Errorf("the log holds the password:\n%s", logs)
	}
}
