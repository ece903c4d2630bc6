package kafka

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

// Failed SASL logins are slowed per source (each answered after the store's growing
// failure delay, shared with AMQP and HTTP) and logged, without the password.
func TestSASLBruteForceSlowedAndLogged(t *testing.T) {
	var out syncBuf // storage_test.go: a log destination safe for the server's goroutines
	ts, users := saslServer(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&out, nil)) })
	const guess = "guess-Zq81"
	for i := range 3 {
		if resp := plainAuth(t, ts.raw(t), "alice", guess); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("attempt %d: %d", i, resp.ErrorCode)
		}
	}
	cl := ts.client(t, kgo.SASL(mechanisms("alice", guess)["SCRAM-SHA-512"]), kgo.RequestRetries(0))
	if err := cl.Ping(testCtx(t)); err == nil {
		t.Fatal("SCRAM with a wrong password succeeded")
	}
	r := ts.raw(t)
	handshakeV0(t, r, "PLAIN")
	r.writeToken([]byte("\x00alice\x00" + guess))
	if _, err := r.readToken(); err == nil {
		t.Fatal("a wrong v0 token was answered")
	}
	n, delay := users.Failures("127.0.0.1")
	if n != 5 || delay != auth.FailureDelayMin<<4 {
		t.Fatalf("after 5 failed logins: %d failures recorded, last delayed %v; want 5 and %v", n, delay, auth.FailureDelayMin<<4)
	}
	logs := out.String()
	if !strings.Contains(logs, "kafka SASL authentication failed") || !strings.Contains(logs, "user=alice") {
		t.Errorf("failed logins not logged:\n%s", logs)
	}
	if strings.Contains(logs, guess) {
		t.Errorf("the log holds the password:\n%s", logs)
	}
	// A success forgets the source.
	if resp := plainAuth(t, ts.raw(t), "alice", "alice-secret"); resp.ErrorCode != 0 {
		t.Fatal(resp.ErrorCode)
	}
	if n, _ := users.Failures("127.0.0.1"); n != 0 {
		t.Errorf("%d failures remembered after a success", n)
	}
}

// Wrong passwords tried side by side on parallel connections are answered one after the
// other, each a growing delay after the previous one, as on one connection: together they
// take at least the sum of the delays. A success of another user from the same source
// does not reset the count.
func TestSASLBruteForceParallel(t *testing.T) {
	ts, users := saslServer(t, nil)
	const n = 4
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = ts.raw(t)
	}
	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int16, n)
	for i, r := range conns {
		wg.Go(func() { codes[i] = plainAuthNoFatal(r, "victim", "guess") })
	}
	wg.Wait()
	elapsed := time.Since(start)
	var sum time.Duration
	for i := range n {
		if codes[i] != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("attempt %d: %d", i, codes[i])
		}
		sum += auth.FailureDelayMin << i
	}
	if elapsed < sum {
		t.Fatalf("%d parallel wrong logins answered within %v, want no sooner than one connection's %v", n, elapsed, sum)
	}
	if resp := plainAuth(t, ts.raw(t), "alice", "alice-secret"); resp.ErrorCode != 0 {
		t.Fatal(resp.ErrorCode)
	}
	if got, _ := users.Failures("127.0.0.1"); got != n {
		t.Fatalf("after alice's success the source has %d failures, want the victim's %d", got, n)
	}
}

// plainAuthNoFatal is plainAuth for other goroutines: the SaslAuthenticate error code, or
// -1 when the exchange itself failed.
func plainAuthNoFatal(r *rawConn, user, pass string) int16 {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	b, err := r.readFrame(r.send(hs), false)
	hsResp := kmsg.NewPtrSASLHandshakeResponse()
	hsResp.Version = 1
	if err != nil || hsResp.ReadFrom(b) != nil {
		return -1
	}
	if hsResp.ErrorCode != 0 {
		return hsResp.ErrorCode
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.Version, a.SASLAuthBytes = 1, []byte("\x00"+user+"\x00"+pass)
	b, err = r.readFrame(r.send(a), false)
	resp := kmsg.NewPtrSASLAuthenticateResponse()
	resp.Version = 1
	if err != nil || resp.ReadFrom(b) != nil {
		return -1
	}
	return resp.ErrorCode
}
