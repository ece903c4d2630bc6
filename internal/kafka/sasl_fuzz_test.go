package kafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/yardmq/yard/internal/auth"
)

// Modes of FuzzSASLExchange's input after the handshake.
const (
	fuzzClient = iota // a real SCRAM or PLAIN client with the fuzzed user and password
	fuzzTokens        // the fuzzed tokens, each in a SaslAuthenticate (v1) or bare (v0)
	fuzzFrames        // the fuzzed bytes as whole frames: garbage, truncated requests
	fuzzModes
)

// FuzzSASLExchange runs whole server-side SASL exchanges through a connection's frame
// handling (decode, gate, SaslHandshake v0/v1, SaslAuthenticate or v0's bare tokens):
// PLAIN, SCRAM-SHA-256 and -512, with a real client or fuzzed tokens. Invariants: no panic;
// only Kafka's SASL error codes; authenticated only as alice with her password (bob's is
// random, unknowable to the fuzzer); a refusal ends the exchange.
func FuzzSASLExchange(f *testing.F) {
	users, err := auth.Open(auth.Options{})
	if err != nil {
		f.Fatal(err)
	}
	alicePW := "alice-secret"
	bobPW := rand.Text()
	for u, pw := range map[string]*string{"alice": &alicePW, "bob": &bobPW} {
		if _, err := users.PutUser(u, pw, nil); err != nil {
			f.Fatal(err)
		}
	}
	ts := startServer(f, func(c *Config) { c.Users, c.SASL = users, true })

	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, v := range []uint8{0, 1} {
			f.Add(mech, v, uint8(fuzzClient), "alice", "alice-secret", []byte(nil), []byte(nil), []byte(nil))
			f.Add(mech, v, uint8(fuzzClient), "alice", "wrong", []byte(nil), []byte(nil), []byte(nil))
			f.Add(mech, v, uint8(fuzzClient), "bob", "alice-secret", []byte(nil), []byte(nil), []byte(nil))
			f.Add(mech, v, uint8(fuzzClient), "nobody", "x", []byte("alice"), []byte(nil), []byte(nil))
		}
	}
	tokens := [][3][]byte{
		{[]byte("\x00alice\x00alice-secret")},
		{[]byte("alice\x00alice\x00alice-secret")},
		{[]byte("bob\x00alice\x00alice-secret")},
		{[]byte("\x00alice\x00alice-secret\x00")},
		{[]byte("\x00\x00")},
		{[]byte("n,,n=alice,r=abcdefghijklmnop"), []byte("c=biws,r=abcdefghijklmnop,p=dGVzdA==")},
		{[]byte("n,,n=alice,r=x"), []byte("c=biws,r=x,p=")},
		{[]byte("y,,n=alice,r=x"), []byte("c=eSws,r=x,p=AAAA")},
		{[]byte("p=tls-unique,,n=alice,r=x")},
		{[]byte("n,a=bob,n=alice,r=x")},
		{[]byte("n,,n=al=2Cice,r=x,e=ext")},
		{[]byte("n,,n=alice,r=x"), []byte("c=biws,r=xSERVER,p=" + hex.EncodeToString(make([]byte, 32)))},
		{[]byte("n,,"), []byte(""), []byte("")},
		{[]byte{0xff, 0xfe, 0}, []byte{0x80}},
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", ""} {
		for _, v := range []uint8{0, 1} {
			for _, tk := range tokens {
				f.Add(mech, v, uint8(fuzzTokens), "", "", tk[0], tk[1], tk[2])
			}
		}
	}
	// Whole frames: a SaslAuthenticate cut short, a header alone, garbage, another API.
	auth1 := frameFor(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: []byte("\x00alice\x00alice-secret")}, 2, "fuzz")
	f.Add("PLAIN", uint8(1), uint8(fuzzFrames), "", "", auth1[:len(auth1)-3], []byte(nil), []byte(nil))
	f.Add("PLAIN", uint8(1), uint8(fuzzFrames), "", "", auth1[:10], auth1, []byte(nil))
	f.Add("PLAIN", uint8(1), uint8(fuzzFrames), "", "", frameFor(kmsg.NewPtrMetadataRequest(), 2, "fuzz"), []byte(nil), []byte(nil))
	f.Add("PLAIN", uint8(1), uint8(fuzzFrames), "", "", []byte{0, 36, 0, 9, 0, 0, 0, 2, 0xff, 0xff, 0x80}, []byte(nil), []byte(nil))
	f.Add("SCRAM-SHA-256", uint8(1), uint8(fuzzFrames), "", "", frameFor(&kmsg.SASLHandshakeRequest{Version: 1, Mechanism: "PLAIN"}, 3, "f"), auth1, []byte(nil))

	f.Fuzz(func(t *testing.T, mech string, version, mode uint8, user, pass string, tok1, tok2, tok3 []byte) {
		users.ForgetFailures() // each exchange alone: earlier failures queue no waits
		fuzzSASL(t, ts.srv, mech, int16(version%2), mode%fuzzModes, user, pass, [][]byte{tok1, tok2, tok3}, bobPW)
	})
}

func fuzzSASL(t *testing.T, s *Server, mech string, version int16, mode uint8, user, pass string, toks [][]byte, bobPW string) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := newConn(s, server)
	defer c.cancel()
	c.initSecurity(true)
	corr := int32(1)
	// step handles one frame as the reader does and checks the reply; false: the exchange
	// ended (the connection would close).
	step := func(frame []byte) (resp kmsg.Response, bare []byte, ok bool) {
		_, r, err := c.handleFrame(frame)
		if err != nil {
			return nil, nil, false
		}
		switch r := r.(type) {
		case *kmsgReply:
			checkSASLCode(t, r.resp)
			return r.resp, nil, true
		case *closingReply:
			if r.resp != nil {
				checkSASLCode(t, r.resp)
			}
			return r.resp, nil, false
		case *rawTokenReply:
			return nil, r.token, true
		}
		t.Fatalf("unexpected reply %T", r)
		return nil, nil, false
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = version, mech
	resp, _, ok := step(frameFor(hs, corr, "fuzz"))
	if !ok || resp.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		if c.sasl.authenticated {
			t.Fatal("authenticated by a refused handshake")
		}
		return
	}
	// send sends one token the way the handshake's version says and returns the server's.
	send := func(tok []byte) ([]byte, bool) {
		corr++
		if version == 0 {
			if len(tok) == 0 {
				return nil, false // an empty frame is refused by its size prefix
			}
			_, bare, ok := step(tok)
			return bare, ok
		}
		resp, _, ok := step(frameFor(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: tok}, corr, "fuzz"))
		if !ok {
			return nil, false
		}
		r := resp.(*kmsg.SASLAuthenticateResponse)
		return r.SASLAuthBytes, r.ErrorCode == 0
	}
	switch mode {
	case fuzzClient:
		var m sasl.Mechanism
		switch mech {
		case "SCRAM-SHA-256":
			m = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
		default:
			tok := append(append(append(append(bytes.Clone(toks[0]), 0), user...), 0), pass...)
			send(tok)
			want := user == "alice" && pass == "alice-secret" && (len(toks[0]) == 0 || string(toks[0]) == "alice") &&
				!bytes.Contains([]byte(user+pass), []byte{0})
			if c.sasl.authenticated != want {
				t.Fatalf("PLAIN %q/%q (authzid %q): authenticated %v, want %v", user, pass, toks[0], c.sasl.authenticated, want)
			}
			return
		}
		sess, tok, err := m.Authenticate(context.Background(), "fuzz")
		if err != nil {
			return
		}
		for done := false; !done; {
			challenge, ok := send(tok)
			if !ok {
				break
			}
			if done, tok, err = sess.Challenge(challenge); err != nil {
				t.Fatalf("the server's SCRAM message %q does not satisfy a real client: %v", challenge, err)
			}
		}
		want := user == "alice" && pass == "alice-secret"
		if c.sasl.authenticated != want {
			t.Fatalf("%s %q/%q: authenticated %v, want %v", mech, user, pass, c.sasl.authenticated, want)
		}
	case fuzzTokens:
		for _, tok := range toks {
			if _, ok := send(tok); !ok || c.sasl.authenticated {
				break
			}
		}
	case fuzzFrames:
		for _, fr := range toks {
			if len(fr) == 0 {
				continue
			}
			if _, _, ok := step(fr); !ok {
				break
			}
		}
	}
	if !c.sasl.authenticated {
		if c.principal != auth.Anonymous {
			t.Fatalf("principal %v without authentication", c.principal)
		}
		return
	}
	// Fuzzed tokens authenticate only with alice's password (no SCRAM proof can be guessed:
	// the server's nonce is random); fuzzed frames may switch to PLAIN by a new handshake.
	switch {
	case c.principal == auth.UserPrincipal("bob") || c.principal != auth.UserPrincipal("alice"):
		t.Fatalf("authenticated as %v (bob's password is %q)", c.principal, bobPW)
	case mode == fuzzTokens && mech != "PLAIN":
		t.Fatalf("fuzzed %s tokens authenticated as %v", mech, c.principal)
	case mode != fuzzClient && !plainHolds(toks, "alice", "alice-secret"):
		t.Fatalf("fuzzed PLAIN tokens %q authenticated without alice's password", toks)
	}
}

// plainHolds: some token or frame carries user NUL password.
func plainHolds(toks [][]byte, user, pass string) bool {
	for _, tok := range toks {
		if bytes.Contains(tok, []byte(user+"\x00"+pass)) {
			return true
		}
	}
	return false
}

// checkSASLCode: a SASL response carries none of the codes but Kafka's for SASL.
func checkSASLCode(t *testing.T, resp kmsg.Response) {
	var code int16
	switch r := resp.(type) {
	case *kmsg.SASLHandshakeResponse:
		code = r.ErrorCode
	case *kmsg.SASLAuthenticateResponse:
		code = r.ErrorCode
	case *kmsg.ApiVersionsResponse:
		code = r.ErrorCode
	default:
		t.Fatalf("a %T answered during SASL", resp)
	}
	switch code {
	case 0, kerr.SaslAuthenticationFailed.Code, kerr.IllegalSaslState.Code, kerr.UnsupportedSaslMechanism.Code, kerr.UnsupportedVersion.Code, kerr.InvalidRequest.Code:
	default:
		t.Fatalf("%T answered error code %d", resp, code)
	}
}
