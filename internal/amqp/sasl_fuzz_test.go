package amqp

import (
	"bytes"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
)

// storeLogins is the user store as an Authenticator without its failure delay (which
// would make each refused fuzz input wait).
type storeLogins struct{ s *auth.Store }

func (a storeLogins) Authenticate(user, secret string) error { return a.s.Authenticate(user, secret) }
func (a storeLogins) AuthenticateExternal(user string) error { return a.s.AuthenticateExternal(user) }

// Modes of FuzzStartOk's response.
const (
	startOkPlain    = iota // PLAIN's "authzid NUL user NUL password" built from the fields
	startOkAMQPlain        // AMQPLAIN's table {LOGIN, PASSWORD} built from the fields
	startOkRaw             // the fuzzed mechanism and response bytes as they are
	startOkModes
)

// FuzzStartOk runs the server's side of the login (protocol header, connection.start,
// start-ok with PLAIN, AMQPLAIN, EXTERNAL or anything, then tune or close) over a pipe.
// Invariants: no panic; a refusal is connection.close 403 ACCESS_REFUSED; a login succeeds
// only as alice with her password (bob's is random), never by EXTERNAL without a
// certificate.
func FuzzStartOk(f *testing.F) {
	users, err := auth.Open(auth.Options{})
	if err != nil {
		f.Fatal(err)
	}
	alicePW, bobPW := "alice-secret", rand.Text()
	for u, pw := range map[string]*string{"alice": &alicePW, "bob": &bobPW} {
		if _, err := users.PutUser(u, pw, nil); err != nil {
			f.Fatal(err)
		}
	}
	s := NewServer(Config{Heartbeat: -1, Auth: storeLogins{users}, LoopbackUsers: []string{}})
	defer s.Shutdown(f.Context())

	for _, m := range []uint8{startOkPlain, startOkAMQPlain} {
		f.Add(m, "", "alice", "alice-secret", []byte(nil))
		f.Add(m, "", "alice", "wrong", []byte(nil))
		f.Add(m, "", "bob", "alice-secret", []byte(nil))
		f.Add(m, "", "", "", []byte(nil))
		f.Add(m, "", "alice\x00", "alice-secret", []byte(nil))
	}
	amqplain := wire.AppendTable(nil, wire.Table{"LOGIN": "alice", "PASSWORD": "alice-secret"})[4:]
	for _, seed := range []struct {
		mech string
		resp []byte
	}{
		{"PLAIN", []byte("\x00alice\x00alice-secret")},
		{"PLAIN", []byte("alice\x00alice\x00alice-secret")},
		{"PLAIN", []byte("\x00alice\x00alice-secret\x00")},
		{"PLAIN", []byte("\x00alice")},
		{"AMQPLAIN", amqplain},
		{"AMQPLAIN", amqplain[:len(amqplain)-4]},
		{"AMQPLAIN", wire.AppendTable(nil, wire.Table{"LOGIN": int32(1), "PASSWORD": []byte("alice-secret")})[4:]},
		{"AMQPLAIN", []byte{0xff, 0xff, 0xff}},
		{"EXTERNAL", nil},
		{"EXTERNAL", []byte("alice")},
		{"plain", []byte("\x00alice\x00alice-secret")},
		{"SCRAM-SHA-256", []byte("n,,n=alice,r=x")},
		{"", nil},
	} {
		f.Add(uint8(startOkRaw), seed.mech, "", "", seed.resp)
	}
	f.Fuzz(func(t *testing.T, mode uint8, mech, user, pass string, raw []byte) {
		mode %= startOkModes
		var resp string
		switch mode {
		case startOkPlain:
			mech, resp = "PLAIN", string(raw)+"\x00"+user+"\x00"+pass
		case startOkAMQPlain:
			mech, resp = "AMQPLAIN", string(wire.AppendTable(nil, wire.Table{"LOGIN": user, "PASSWORD": pass})[4:])
		default:
			resp = string(raw)
		}
		loggedIn, user2 := startOkExchange(t, s, mech, resp)
		switch {
		case !loggedIn:
		case user2 != "alice":
			t.Fatalf("%s %q logged in as %q (bob's password is %q)", mech, resp, user2, bobPW)
		case mode == startOkRaw && (mech == "EXTERNAL" || !strings.Contains(resp, "alice-secret")):
			t.Fatalf("%s %q logged in without alice's password", mech, resp)
		case mode != startOkRaw && pass != "alice-secret":
			t.Fatalf("%s as %q/%q logged in", mech, user, pass)
		}
		if mode != startOkRaw && user == "alice" && pass == "alice-secret" && !bytes.ContainsRune(raw, 0) && !loggedIn {
			t.Fatalf("%s with alice's password refused", mech)
		}
	})
}

// startOkExchange logs in over a pipe with one start-ok: true and the server's user if
// tune followed, false if close 403 did (anything else fails the test).
func startOkExchange(t *testing.T, s *Server, mech, resp string) (bool, string) {
	client, server := net.Pipe()
	defer client.Close()
	c := newConn(s, server)
	done := make(chan struct{})
	go func() { defer close(done); c.serve() }()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write(wire.ProtocolHeader); err != nil {
		t.Fatal(err)
	}
	fr := wire.NewFrameReader(client, 4096)
	read := func() wire.Method {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("cannot read the server's frame: %v", err)
		}
		m, err := wire.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatalf("cannot decode the server's method: %v", err)
		}
		return m
	}
	if m, ok := read().(*wire.ConnectionStart); !ok || m.Mechanisms != "PLAIN AMQPLAIN" {
		t.Fatalf("connection.start: %+v", m)
	}
	props := wire.Table{"capabilities": wire.Table{"authentication_failure_close": true}}
	if _, err := client.Write(wire.AppendMethodFrame(nil, 0, &wire.ConnectionStartOk{ClientProperties: props, Mechanism: mech, Response: resp, Locale: "en_US"})); err != nil {
		t.Fatal(err)
	}
	var ok bool
	switch m := read().(type) {
	case *wire.ConnectionTune:
		ok = true
	case *wire.ConnectionClose:
		if m.ReplyCode != wire.AccessRefused {
			t.Fatalf("a refused login closed with %d %q, want 403", m.ReplyCode, m.ReplyText)
		}
		client.Write(wire.AppendMethodFrame(nil, 0, &wire.ConnectionCloseOk{}))
	default:
		t.Fatalf("after start-ok: %T", m)
	}
	client.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end after its client closed")
	}
	return ok, c.user
}
