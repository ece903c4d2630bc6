package auth

// SCRAM credentials as Kafka stores them (RFC 5802, RFC 7677): per mechanism a salt, an
// iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
// HMAC(SaltedPassword, "Server Key"). The password itself is never kept; PLAIN logins are
// checked by deriving the keys from the offered password.

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Mechanism is a SCRAM mechanism.
type Mechanism string

// The SCRAM mechanisms yard serves, named as SASL names them.
const (
	ScramSHA256 Mechanism = "SCRAM-SHA-256"
	ScramSHA512 Mechanism = "SCRAM-SHA-512"
)

// Mechanisms lists the SCRAM mechanisms every password gets credentials for.
var Mechanisms = []Mechanism{ScramSHA256, ScramSHA512}

// DefaultIterations is the iteration count of new credentials (Kafka's and the RFC's
// minimum is 4096).
const DefaultIterations = 4096

// MinIterations and MaxIterations bound what AlterUserScramCredentials may set (Kafka's).
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// ParseMechanism accepts a SCRAM mechanism name.
func ParseMechanism(s string) (Mechanism, bool) {
	switch Mechanism(s) {
	case ScramSHA256, ScramSHA512:
		return Mechanism(s), true
	}
	return "", false
}

func (m Mechanism) hash() func() hash.Hash {
	switch m {
	case ScramSHA256:
		return sha256.New
	case ScramSHA512:
		return sha512.New
	}
	panic("BUG: unknown SCRAM mechanism " + string(m))
}

// Size is the mechanism's hash size in bytes.
func (m Mechanism) Size() int { return m.hash()().Size() }

// Credential is one user's SCRAM credential for one mechanism.
type Credential struct {
	Salt       []byte `json:"salt"`
	Iterations int    `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// SaltedPassword is Hi(password, salt, iterations): PBKDF2 with the mechanism's HMAC.
func SaltedPassword(m Mechanism, password string, salt []byte, iterations int) []byte {
	k, err := pbkdf2.Key(m.hash(), password, salt, iterations, m.Size())
	if err != nil {
		panic(fmt.Sprintf("BUG: pbkdf2: %v", err))
	}
	return k
}

func hmacSum(m Mechanism, key []byte, msg ...[]byte) []byte {
	h := hmac.New(m.hash(), key)
	for _, b := range msg {
		h.Write(b)
	}
	return h.Sum(nil)
}

func hashSum(m Mechanism, b []byte) []byte {
	h := m.hash()()
	h.Write(b)
	return h.Sum(nil)
}

// CredentialFromSalted derives a credential from a salted password (what Kafka's
// AlterUserScramCredentials sends).
func CredentialFromSalted(m Mechanism, salt, salted []byte, iterations int) Credential {
	clientKey := hmacSum(m, salted, []byte("Client Key"))
	return Credential{
		Salt: append([]byte(nil), salt...), Iterations: iterations,
		StoredKey: hashSum(m, clientKey),
		ServerKey: hmacSum(m, salted, []byte("Server Key")),
	}
}

// NewCredential makes a credential for password with a fresh random salt.
func NewCredential(m Mechanism, password string, iterations int) Credential {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	return CredentialFromSalted(m, salt, SaltedPassword(m, password, salt, iterations), iterations)
}

// Verify reports whether password is the credential's, in constant time over the keys.
func (c Credential) Verify(m Mechanism, password string) bool {
	if c.Iterations <= 0 || len(c.Salt) == 0 {
		return false
	}
	d := CredentialFromSalted(m, c.Salt, SaltedPassword(m, password, c.Salt, c.Iterations), c.Iterations)
	return subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}
