package auth

// The server side of a SCRAM exchange (RFC 5802, RFC 7677) over the store, for any SASL
// framing (Kafka's SaslAuthenticate). Two steps: client-first -> server-first, then
// client-final -> server-final. An unknown user gets a made-up salt so that the exchange
// does not tell which users exist; it fails at the proof like a wrong password.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrScram is wrapped by every failed exchange; its text is safe to show the client.
var ErrScram = errors.New("authentication failed")

// ClientFirst is a parsed client-first message.
type ClientFirst struct {
	GS2Header  string // "n,," or "y,," or "n,a=authzid,"
	Authzid    string
	User       string
	Nonce      string
	Bare       string // client-first-message-bare
	Extensions map[string]string
}

// ParseClientFirst parses "gs2-header client-first-message-bare". Channel binding ("p=") is
// refused: no SCRAM-*-PLUS is offered.
func ParseClientFirst(msg string) (ClientFirst, error) {
	var cf ClientFirst
	// gs2-header: cbind-flag "," [authzid] ","
	i := strings.IndexByte(msg, ',')
	if i < 0 {
		return cf, errors.New("malformed client-first message: no GS2 header")
	}
	switch flag := msg[:i]; {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return cf, errors.New("channel binding is not supported")
	default:
		return cf, fmt.Errorf("malformed client-first message: bad channel binding flag %q", flag)
	}
	rest := msg[i+1:]
	j := strings.IndexByte(rest, ',')
	if j < 0 {
		return cf, errors.New("malformed client-first message: GS2 header not terminated")
	}
	if az := rest[:j]; az != "" {
		if !strings.HasPrefix(az, "a=") {
			return cf, errors.New("malformed client-first message: bad authzid")
		}
		name, err := decodeSaslName(az[2:])
		if err != nil {
			return cf, err
		}
		cf.Authzid = name
	}
	cf.GS2Header = msg[:i+1+j+1]
	cf.Bare = rest[j+1:]
	attrs := strings.Split(cf.Bare, ",")
	if len(attrs) < 2 || strings.HasPrefix(attrs[0], "m=") {
		return cf, errors.New("malformed client-first message: expected n= and r=")
	}
	if !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("malformed client-first message: expected n= and r=")
	}
	name, err := decodeSaslName(attrs[0][2:])
	if err != nil {
		return cf, err
	}
	cf.User, cf.Nonce = name, attrs[1][2:]
	if cf.User == "" || cf.Nonce == "" || !printableNonce(cf.Nonce) {
		return cf, errors.New("malformed client-first message: empty user or bad nonce")
	}
	for _, a := range attrs[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return cf, errors.New("malformed client-first message: bad extension")
		}
		if cf.Extensions == nil {
			cf.Extensions = map[string]string{}
		}
		cf.Extensions[k] = v
	}
	return cf, nil
}

func printableNonce(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

func decodeSaslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("malformed user name: bad '=' escape")
		}
		i += 2
	}
	return b.String(), nil
}

// ClientFinal is a parsed client-final message.
type ClientFinal struct {
	ChannelBinding string // base64 of the GS2 header
	Nonce          string
	Proof          []byte
	WithoutProof   string
}

// ParseClientFinal parses "c=...,r=...[,ext]*,p=...".
func ParseClientFinal(msg string) (ClientFinal, error) {
	var cf ClientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, errors.New("malformed client-final message: no proof")
	}
	cf.WithoutProof = msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return cf, errors.New("malformed client-final message: proof is not base64")
	}
	cf.Proof = proof
	attrs := strings.Split(cf.WithoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("malformed client-final message: expected c= and r=")
	}
	cf.ChannelBinding, cf.Nonce = attrs[0][2:], attrs[1][2:]
	return cf, nil
}

// ScramServer is one exchange in progress.
type ScramServer struct {
	store       *Store
	mech        Mechanism
	step        int
	first       ClientFirst
	cred        Credential
	known       bool
	nonce       string // the full nonce, client's + ours
	serverFirst string
}

// NewScram starts an exchange for a mechanism.
func (s *Store) NewScram(m Mechanism) *ScramServer { return &ScramServer{store: s, mech: m} }

// User is the user named in client-first ("" before it).
func (x *ScramServer) User() string { return x.first.User }

// Extensions are client-first's extensions (Kafka's tokenauth=true).
func (x *ScramServer) Extensions() map[string]string { return x.first.Extensions }

// Step answers the client's next message. done is true after the server-final message;
// an error ends the exchange and wraps ErrScram (its text names no secret).
func (x *ScramServer) Step(msg []byte) (resp []byte, done bool, err error) {
	switch x.step {
	case 0:
		x.step = 1
		cf, err := ParseClientFirst(string(msg))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrScram, err)
		}
		if cf.Authzid != "" && cf.Authzid != cf.User {
			return nil, false, fmt.Errorf("%w: authorization id %q differs from the user name", ErrScram, cf.Authzid)
		}
		x.first = cf
		x.cred, x.known = x.store.Credential(cf.User, x.mech)
		if !x.known {
			x.cred = x.store.fakeCredential(cf.User, x.mech)
		}
		n := make([]byte, 18)
		rand.Read(n)
		x.nonce = cf.Nonce + base64.RawStdEncoding.EncodeToString(n)
		x.serverFirst = "r=" + x.nonce + ",s=" + base64.StdEncoding.EncodeToString(x.cred.Salt) + ",i=" + strconv.Itoa(x.cred.Iterations)
		return []byte(x.serverFirst), false, nil
	case 1:
		x.step = 2
		cf, err := ParseClientFinal(string(msg))
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrScram, err)
		}
		if cf.ChannelBinding != base64.StdEncoding.EncodeToString([]byte(x.first.GS2Header)) {
			return nil, false, fmt.Errorf("%w: channel binding does not match", ErrScram)
		}
		if cf.Nonce != x.nonce {
			return nil, false, fmt.Errorf("%w: nonce does not match", ErrScram)
		}
		authMsg := []byte(x.first.Bare + "," + x.serverFirst + "," + cf.WithoutProof)
		sig := hmacSum(x.mech, x.cred.StoredKey, authMsg)
		if len(cf.Proof) != len(sig) {
			return nil, false, fmt.Errorf("%w: invalid credentials", ErrScram)
		}
		clientKey := make([]byte, len(sig))
		for i := range sig {
			clientKey[i] = cf.Proof[i] ^ sig[i]
		}
		if subtle.ConstantTimeCompare(hashSum(x.mech, clientKey), x.cred.StoredKey) != 1 || !x.known {
			return nil, false, fmt.Errorf("%w: invalid credentials", ErrScram)
		}
		return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(x.mech, x.cred.ServerKey, authMsg))), true, nil
	}
	return nil, false, fmt.Errorf("%w: exchange already finished", ErrScram)
}

// fakeCredential is a stable made-up credential for an unknown user (same salt on every
// attempt, so that probing does not tell known from unknown users).
func (s *Store) fakeCredential(user string, m Mechanism) Credential {
	s.mu.Lock()
	if s.fakeKey == nil {
		s.fakeKey = make([]byte, 32)
		rand.Read(s.fakeKey)
	}
	key := s.fakeKey
	s.mu.Unlock()
	h := hmac.New(sha256.New, key)
	h.Write([]byte(string(m) + "\x00" + user))
	return Credential{Salt: h.Sum(nil), Iterations: s.iterations, StoredKey: make([]byte, m.Size()), ServerKey: make([]byte, m.Size())}
}
