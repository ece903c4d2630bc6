package kafka

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/yardmq/yard/internal/auth"
)

func saslServer(t *testing.T, mod func(*Config)) (*testServer, *auth.Store) {
	t.Helper()
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw := "alice-secret"
	if _, err := users.PutUser("alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) {
		c.Users, c.SASL = users, true
		if mod != nil {
			mod(c)
		}
	})
	return ts, users
}

func mechanisms(user, pass string) map[string]sasl.Mechanism {
	return map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: user, Pass: pass}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(),
	}
}

func TestSASLFranzGo(t *testing.T) {
	ts, _ := saslServer(t, nil)
	for name, m := range mechanisms("alice", "alice-secret") {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			adm := kadm.NewClient(ts.client(t, kgo.SASL(m)))
			topic := "t-" + strings.ToLower(name)
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
				t.Fatalf("authenticated CreateTopic: %v", err)
			}
			cl := ts.client(t, kgo.SASL(m), kgo.DefaultProduceTopic(topic))
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatalf("authenticated produce: %v", err)
			}
		})
	}
	for name, m := range mechanisms("alice", "wrong") {
		t.Run(name+"/wrong-password", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testCtx(t), 30*time.Second)
			defer cancel()
			cl := ts.client(t, kgo.SASL(m), kgo.RequestRetries(0))
			err := cl.Ping(ctx)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
	for name, m := range mechanisms("mallory", "alice-secret") {
		t.Run(name+"/unknown-user", func(t *testing.T) {
			cl := ts.client(t, kgo.SASL(m), kgo.RequestRetries(0))
			if err := cl.Ping(testCtx(t)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("unknown user: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
}

func TestSASLRequiredBeforeRequests(t *testing.T) {
	ts, _ := saslServer(t, nil)
	r := ts.raw(t)
	// ApiVersions is allowed, anything else closes the connection.
	if resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions before SASL: %v", resp.ErrorCode)
	}
	corr := r.send(kmsg.NewPtrMetadataRequest())
	if _, err := r.readFrame(corr, false); err == nil {
		t.Fatal("Metadata answered before authentication")
	}
}

func plainAuth(t *testing.T, r *rawConn, user, pass string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	if resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
		t.Fatalf("SaslHandshake: %v", resp.ErrorCode)
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.Version, a.SASLAuthBytes = 1, []byte("\x00"+user+"\x00"+pass)
	return r.roundTrip(a).(*kmsg.SASLAuthenticateResponse)
}

func TestSASLReauthentication(t *testing.T) {
	ts, _ := saslServer(t, func(c *Config) { c.ReauthMaxAge = 50 * time.Millisecond })
	r := ts.raw(t)
	resp := plainAuth(t, r, "alice", "alice-secret")
	if resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 50 {
		t.Fatalf("SaslAuthenticate: code %d lifetime %d, want 0 and 50", resp.ErrorCode, resp.SessionLifetimeMillis)
	}
	r.roundTrip(kmsg.NewPtrMetadataRequest()) // within the session
	// Re-authenticate as the same user: fine.
	if resp := plainAuth(t, r, "alice", "alice-secret"); resp.ErrorCode != 0 {
		t.Fatalf("re-authentication: %d", resp.ErrorCode)
	}
	// Let the session expire: the next request closes the connection.
	deadline := time.Now().Add(60 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	corr := r.send(kmsg.NewPtrMetadataRequest())
	if _, err := r.readFrame(corr, false); err == nil {
		t.Fatal("request after the session expired was answered")
	}
}

func TestSASLFailureMessage(t *testing.T) {
	ts, _ := saslServer(t, nil)
	r := ts.raw(t)
	resp := plainAuth(t, r, "alice", "nope")
	if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "Invalid username or password") {
		t.Fatalf("wrong password: %d %v", resp.ErrorCode, resp.ErrorMessage)
	}
}

func TestScramCredentialsAdmin(t *testing.T) {
	ts, users := saslServer(t, nil)
	ctx := testCtx(t)
	cl := ts.client(t, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()))
	adm := kadm.NewClient(cl)
	bad := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "carol", 1, 10, []byte("salt"), make([]byte, 32)
	bad.Upsertions = append(bad.Upsertions, up)
	badResp, err := bad.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if badResp.Results[0].ErrorCode != kerr.UnacceptableCredential.Code {
		t.Fatalf("10 iterations: %+v", badResp.Results[0])
	}
	// A salted password that is not the hash's size is taken, as Kafka takes it (kafka-go's
	// own tests upsert 18 bytes for SCRAM-SHA-512); an empty one is not.
	for _, salted := range []string{"my-salted-password", ""} {
		odd := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "dave", 2, 15000, []byte("my-salt"), []byte(salted)
		odd.Upsertions = append(odd.Upsertions, up)
		r, err := odd.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int16{true: 0, false: kerr.UnacceptableCredential.Code}[salted != ""]; r.Results[0].ErrorCode != want {
			t.Fatalf("salted password %q: %+v, want code %d", salted, r.Results[0], want)
		}
	}
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-pw"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-pw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res["bob"].Err != nil {
		t.Fatalf("alter: bob %v", res["bob"].Err)
	}
	for _, m := range []sasl.Mechanism{scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism(), scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha512Mechanism()} {
		if err := ts.client(t, kgo.SASL(m)).Ping(ctx); err != nil {
			t.Fatalf("bob with %s: %v", m.Name(), err)
		}
	}
	if err := users.Authenticate("bob", "bob-pw"); err != nil {
		t.Fatalf("AMQP-side check of a Kafka-created user: %v", err)
	}
	desc, err := adm.DescribeUserSCRAMs(ctx, "bob", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if d := desc["bob"]; d.Err != nil || len(d.CredInfos) != 2 || !errors.Is(desc["nobody"].Err, kerr.ResourceNotFound) {
		t.Fatalf("describe: %+v", desc)
	}
	del, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha512}, {User: "nobody", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if del["bob"].Err != nil || !errors.Is(del["nobody"].Err, kerr.ResourceNotFound) {
		t.Fatalf("delete: %+v", del)
	}
}

func TestProtectedMode(t *testing.T) {
	remote := func(net.Addr) bool { return false }
	ts := startServer(t, func(c *Config) { c.isLoopback = remote })
	r := ts.raw(t)
	resp := r.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("remote client on an unauthenticated listener: ApiVersions error %d", resp.ErrorCode)
	}
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection not closed after the refusal: %v", err)
	}
	// --allow-unauthenticated serves it.
	ts2 := startServer(t, func(c *Config) { c.isLoopback, c.AllowUnauthenticated = remote, true })
	if err := ts2.client(t).Ping(testCtx(t)); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	// A SASL listener serves remote clients once authenticated.
	ts3, _ := saslServer(t, func(c *Config) { c.isLoopback = remote })
	if err := ts3.client(t, kgo.SASL(plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism())).Ping(testCtx(t)); err != nil {
		t.Fatalf("SASL from remote: %v", err)
	}
}

// TestSaslOnPlaintextListener: a listener without SASL answers SaslHandshake and
// SaslAuthenticate ILLEGAL_SASL_STATE (no mechanisms) and keeps the connection, as Kafka's
// broker does there; it does not authenticate, even with users configured.
func TestSaslOnPlaintextListener(t *testing.T) {
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw := "alice-secret"
	if _, err := users.PutUser("alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.Users = users })
	r := ts.raw(t)
	for _, v := range []int16{0, 1} {
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = v, "PLAIN"
		resp := r.roundTrip(hs).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.IllegalSaslState.Code || len(resp.SupportedMechanisms) != 0 {
			t.Fatalf("SaslHandshake v%d on PLAINTEXT: code %d mechanisms %v, want ILLEGAL_SASL_STATE and none", v, resp.ErrorCode, resp.SupportedMechanisms)
		}
	}
	a := kmsg.NewPtrSASLAuthenticateRequest()
	a.Version, a.SASLAuthBytes = 1, []byte("\x00alice\x00alice-secret")
	if resp := r.roundTrip(a).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
		t.Fatalf("SaslAuthenticate on PLAINTEXT: code %d, want ILLEGAL_SASL_STATE", resp.ErrorCode)
	}
	// The connection stays open and keeps being served.
	if resp := r.roundTrip(kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
		t.Fatal("Metadata after SaslHandshake on PLAINTEXT: no brokers")
	}
}
