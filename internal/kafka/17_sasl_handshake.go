package kafka

// SaslHandshake, version 1 (version 0's unframed tokens are not served: every client since
// Kafka 1.0 sends SaslAuthenticate). Chooses the mechanism of the next SaslAuthenticate:
// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 over the user store. Sent again after
// authentication it starts a re-authentication (KIP-368).

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
	return respond(resp), nil
}
