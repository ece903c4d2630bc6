package auth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.json")
	s, err := Open(Options{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

func TestDefaultUserAndPersistence(t *testing.T) {
	s, p := openTemp(t)
	if err := s.Authenticate("guest", "guest"); err != nil {
		t.Fatalf("default guest/guest: %v", err)
	}
	if err := s.Authenticate("guest", "nope"); !errors.Is(err, ErrBadLogin) {
		t.Fatalf("wrong password accepted: %v", err)
	}
	if u, _ := s.User("guest"); !u.HasTag(TagAdministrator) || !s.CanAccessVhost("guest", "/") {
		t.Fatalf("guest is not an administrator of /: %+v", u)
	}
	pw := "s3cret"
	if _, err := s.PutUser("alice", &pw, []string{"monitoring"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddVhost("v1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPermission("alice", "v1", Permission{Configure: "^a", Write: ".*", Read: ""}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if strings.Contains(string(data), pw) {
		t.Fatal("password stored in clear")
	}
	s2, err := Open(Options{Path: p, DefaultUser: "other", DefaultPass: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Authenticate("alice", pw); err != nil {
		t.Fatalf("reopened: %v", err)
	}
	if _, ok := s2.User("other"); ok {
		t.Fatal("default user created over an existing store")
	}
	if !s2.Check("alice", "v1", Configure, "abc") || s2.Check("alice", "v1", Configure, "b") || s2.Check("alice", "v1", Read, "abc") {
		t.Fatal("permission patterns not applied as RabbitMQ's")
	}
	if s2.CanAccessVhost("alice", "/") {
		t.Fatal("alice may open / without permissions")
	}
	// corruption is detected
	os.WriteFile(p, []byte(strings.Replace(string(data), "alice", "alicf", 1)), 0o600)
	if _, err := Open(Options{Path: p}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestDefaultUserFromOptions(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "u.json"), DefaultUser: "admin", DefaultPass: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Authenticate("admin", "pw") != nil || s.Authenticate("guest", "guest") == nil {
		t.Fatal("default user not taken from options")
	}
}

// scramClient is a minimal RFC 5802 client.
func scramClient(t *testing.T, s *Store, m Mechanism, user, pass string) error {
	t.Helper()
	x := s.NewScram(m)
	cnonce := "fyko+d2lbbFgONRv9qkxdawL"
	gs2 := "n,,"
	bare := "n=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user) + ",r=" + cnonce
	sf, done, err := x.Step([]byte(gs2 + bare))
	if err != nil || done {
		return err
	}
	var nonce, salt string
	var iters int
	for _, a := range strings.Split(string(sf), ",") {
		switch a[:2] {
		case "r=":
			nonce = a[2:]
		case "s=":
			salt = a[2:]
		case "i=":
			iters, _ = strconv.Atoi(a[2:])
		}
	}
	if !strings.HasPrefix(nonce, cnonce) {
		t.Fatalf("server nonce %q does not extend the client's", nonce)
	}
	saltB, _ := base64.StdEncoding.DecodeString(salt)
	salted := SaltedPassword(m, pass, saltB, iters)
	clientKey := hmacSum(m, salted, []byte("Client Key"))
	storedKey := hashSum(m, clientKey)
	without := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2)) + ",r=" + nonce
	authMsg := bare + "," + string(sf) + "," + without
	sig := hmacSum(m, storedKey, []byte(authMsg))
	proof := make([]byte, len(sig))
	for i := range sig {
		proof[i] = clientKey[i] ^ sig[i]
	}
	final, done, err := x.Step([]byte(without + ",p=" + base64.StdEncoding.EncodeToString(proof)))
	if err != nil {
		return err
	}
	serverKey := hmacSum(m, salted, []byte("Server Key"))
	if !done || string(final) != "v="+base64.StdEncoding.EncodeToString(hmacSum(m, serverKey, []byte(authMsg))) {
		t.Fatalf("bad server-final %q", final)
	}
	return nil
}

func TestScramExchange(t *testing.T) {
	s, _ := openTemp(t)
	pw := "pa,ss=word"
	if _, err := s.PutUser("u,=1", &pw, nil); err != nil {
		t.Fatal(err)
	}
	for _, m := range Mechanisms {
		if err := scramClient(t, s, m, "u,=1", pw); err != nil {
			t.Errorf("%s right password: %v", m, err)
		}
		if err := scramClient(t, s, m, "u,=1", "wrong"); !errors.Is(err, ErrScram) {
			t.Errorf("%s wrong password: %v", m, err)
		}
		if err := scramClient(t, s, m, "nobody", pw); !errors.Is(err, ErrScram) {
			t.Errorf("%s unknown user: %v", m, err)
		}
	}
	if _, _, err := s.NewScram(ScramSHA256).Step([]byte("p=tls-unique,,n=a,r=b")); !errors.Is(err, ErrScram) {
		t.Errorf("channel binding accepted: %v", err)
	}
}

func FuzzParseClientFirst(f *testing.F) {
	f.Add("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
	f.Add("y,a=u,n=u,r=x,tokenauth=true")
	f.Add("p=x,,n=a,r=b")
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFirst(msg)
		if err == nil && (cf.User == "" || cf.Nonce == "" || cf.GS2Header+cf.Bare != msg) {
			t.Fatalf("accepted %q as %+v", msg, cf)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	f.Add("c=biws,r=abc,p=dHpIUGdXbWg=")
	f.Add("c=,r=,p=")
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFinal(msg)
		if err == nil && !strings.HasPrefix(msg, cf.WithoutProof+",p=") {
			t.Fatalf("accepted %q as %+v", msg, cf)
		}
	})
}

func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=guest,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	s, _ := Open(Options{Iterations: 4096})
	f.Fuzz(func(t *testing.T, first, final []byte) {
		x := s.NewScram(ScramSHA256)
		if _, _, err := x.Step(first); err != nil {
			return
		}
		if _, done, err := x.Step(final); err == nil || done {
			t.Fatalf("fuzzed proof accepted")
		}
	})
}
