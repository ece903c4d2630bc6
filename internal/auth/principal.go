// Package auth is yard's one user store for every protocol: users with salted SCRAM
// credentials (SCRAM-SHA-256 and SCRAM-SHA-512, PLAIN verified against them), RabbitMQ-style
// tags, the set of vhosts and AMQP permissions per user and vhost, persisted in the data
// directory. It also names who a connection is: the Principal that front ends keep on an
// authenticated connection and that authorizers (Kafka ACLs) read.
package auth

// Principal is an authenticated identity as Kafka's KafkaPrincipal: a type and a name,
// written "User:alice". The zero Principal is "nobody authenticated".
type Principal struct {
	Type string // PrincipalUser for users of the store and certificate subjects
	Name string
}

// PrincipalUser is the type of every principal yard creates.
const PrincipalUser = "User"

// Anonymous is the principal of a connection on a listener without authentication, as
// Kafka's User:ANONYMOUS.
var Anonymous = Principal{Type: PrincipalUser, Name: "ANONYMOUS"}

// UserPrincipal is User:name.
func UserPrincipal(name string) Principal { return Principal{Type: PrincipalUser, Name: name} }

// String is "Type:Name" as Kafka writes principals in ACLs; "" for the zero Principal.
func (p Principal) String() string {
	if p == (Principal{}) {
		return ""
	}
	return p.Type + ":" + p.Name
}

// IsZero reports whether nobody is authenticated.
func (p Principal) IsZero() bool { return p == (Principal{}) }
