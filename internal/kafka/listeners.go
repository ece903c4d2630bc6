package kafka

// Kafka's listener syntax (listeners=PLAINTEXT://:9092,SSL://:9093): one security protocol
// and address per listener. yard names each listener after its security protocol, as
// Kafka's default listener.security.protocol.map does, so each may appear once.

import (
	"fmt"
	"net"
	"strings"
)

// SecurityProtocol is a listener's Kafka security protocol.
type SecurityProtocol string

// Kafka's four security protocols.
const (
	Plaintext     SecurityProtocol = "PLAINTEXT"
	SSL           SecurityProtocol = "SSL"
	SASLPlaintext SecurityProtocol = "SASL_PLAINTEXT"
	SASLSSL       SecurityProtocol = "SASL_SSL"
)

// TLS reports whether the protocol runs over TLS.
func (p SecurityProtocol) TLS() bool { return p == SSL || p == SASLSSL }

// SASL reports whether the protocol authenticates with SASL.
func (p SecurityProtocol) SASL() bool { return p == SASLPlaintext || p == SASLSSL }

// ListenerSpec is one parsed entry of --kafka-listen.
type ListenerSpec struct {
	Name     string // the listener name: its security protocol
	Protocol SecurityProtocol
	Addr     string // host:port to bind
}

// ParseListeners parses a comma-separated Kafka listener list; a bare host:port is
// PLAINTEXT. "" is no listener.
func ParseListeners(s string) ([]ListenerSpec, error) {
	var out []ListenerSpec
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		proto, addr := Plaintext, part
		if p, a, ok := strings.Cut(part, "://"); ok {
			proto, addr = SecurityProtocol(strings.ToUpper(p)), a
			switch proto {
			case Plaintext, SSL, SASLPlaintext, SASLSSL:
			default:
				return nil, fmt.Errorf("cannot parse kafka listener %q: unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", part, p)
			}
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("cannot parse kafka listener %q: %w", part, err)
		}
		if seen[string(proto)] {
			return nil, fmt.Errorf("cannot parse kafka listeners %q: listener %s appears twice", s, proto)
		}
		seen[string(proto)] = true
		out = append(out, ListenerSpec{Name: string(proto), Protocol: proto, Addr: addr})
	}
	return out, nil
}
