package kafka

// SaslHandshake, versions 0-1. Chooses the mechanism of the next SaslAuthenticate: PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512 over the user store. After version 1 the tokens travel in
// SaslAuthenticate requests; after version 0 (clients before Kafka 1.0) they follow as bare
// size-prefixed frames without a request header, answered the same way, and a failure closes
// the connection without an answer (sasl.go), as Kafka's broker does. Sent again after
// authentication it starts a re-authentication (KIP-368). On a listener without SASL
// (PLAINTEXT, SSL) it is answered ILLEGAL_SASL_STATE with no mechanisms and the connection
// stays open, as Kafka's broker answers it there (KafkaApis.handleSaslHandshakeRequest).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

// saslMechanisms are the mechanisms offered, in Kafka's order.
var saslMechanisms = []string{"PLAIN", string(auth.ScramSHA256), string(auth.ScramSHA512)}

func handleSaslHandshake(rc *reqCtx, req *kmsg.SASLHandshakeRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	c := rc.c
	if !c.sasl.required {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.SupportedMechanisms = []string{}
		return respond(resp), nil
	}
	if rc.s.cfg.Users == nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = []string{}
		return respond(resp), nil
	}
	resp.SupportedMechanisms = saslMechanisms
	c.sasl.mechanism, c.sasl.scram = "", nil
	switch req.Mechanism {
	case "PLAIN":
	case string(auth.ScramSHA256), string(auth.ScramSHA512):
		c.sasl.scram = rc.s.cfg.Users.NewScram(auth.Mechanism(req.Mechanism))
	default:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return respond(resp), nil
	}
	c.sasl.mechanism = req.Mechanism
	c.sasl.rawTokens = rc.hdr.version == 0
	return respond(resp), nil
}
