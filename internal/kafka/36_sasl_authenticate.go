package kafka

// SaslAuthenticate, versions 0-2: the tokens of the mechanism SaslHandshake chose. PLAIN is
// one round ("authzid NUL user NUL password"); SCRAM two (client-first, client-final). A
// success sets the connection's principal (User:NAME) and, with connections.max.reauth.ms,
// answers session_lifetime_ms (v1+): the client must re-authenticate (SaslHandshake, then
// SaslAuthenticate as the same user) before the session ends. A failure answers
// SASL_AUTHENTICATION_FAILED with a message, after a per-source delay that grows with
// repeated failures, and closes the connection; it is logged rate-limited, without secrets.
// On a listener without SASL it is answered ILLEGAL_SASL_STATE, as Kafka's broker does.

import (
	"bytes"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

func handleSaslAuthenticate(rc *reqCtx, req *kmsg.SASLAuthenticateRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	c, users := rc.c, rc.s.cfg.Users
	if !c.sasl.required {
		// A listener without SASL: Kafka's answer there (KafkaApis), the connection stays.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strPtr("SaslAuthenticate request received after successful authentication")
		return respond(resp), nil
	}
	if c.sasl.mechanism == "" || users == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = strPtr("SaslAuthenticate before a successful SaslHandshake")
		return &closingReply{resp: resp}, nil
	}
	var user string
	switch c.sasl.mechanism {
	case "PLAIN":
		parts := bytes.Split(req.SASLAuthBytes, []byte{0})
		if len(parts) != 3 {
			return c.saslFailed(rc, resp, "", "Authentication failed: malformed PLAIN message")
		}
		authzid, u, pass := string(parts[0]), string(parts[1]), string(parts[2])
		if authzid != "" && authzid != u {
			return c.saslFailed(rc, resp, u, "Authentication failed: Client requested an authorization id that is different from username")
		}
		if _, err := users.CheckPassword(u, pass); err != nil {
			return c.saslFailed(rc, resp, u, "Authentication failed: Invalid username or password")
		}
		user = u
	default:
		out, done, err := c.sasl.scram.Step(req.SASLAuthBytes)
		if err != nil {
			return c.saslFailed(rc, resp, c.sasl.scram.User(), "Authentication failed during authentication due to invalid credentials with SASL mechanism "+c.sasl.mechanism)
		}
		resp.SASLAuthBytes = out
		if !done {
			return respond(resp), nil
		}
		user = c.sasl.scram.User()
	}
	p := auth.UserPrincipal(user)
	if c.sasl.authenticated && p != c.principal {
		return c.saslFailed(rc, resp, user, "Cannot change principals during re-authentication from "+c.principal.String()+": "+p.String())
	}
	// A success waits behind the failures queued for its source or user (internal/auth):
	// answered at once, it would tell itself from a failure by its timing.
	d, ok := users.LoginSucceeded(remoteIP(c.nc.RemoteAddr()), user)
	if !ok { // too many failures queued: answered as one
		msg := "Authentication failed: Invalid username or password"
		if c.sasl.mechanism != "PLAIN" {
			msg = "Authentication failed during authentication due to invalid credentials with SASL mechanism " + c.sasl.mechanism
		}
		return c.saslDenied(resp, msg, d)
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	c.sasl.authenticated, c.principal, c.sasl.mechanism, c.sasl.scram = true, p, "", nil
	if c.lc != nil {
		c.lc.SetIdentity(user, "")
	}
	if age := rc.s.cfg.ReauthMaxAge; age > 0 {
		c.sasl.expiry = time.Now().Add(age)
		resp.SessionLifetimeMillis = age.Milliseconds()
	}
	return respond(resp), nil
}

// saslFailed answers a failed authentication, after the source's failure delay, and closes.
func (c *conn) saslFailed(rc *reqCtx, resp *kmsg.SASLAuthenticateResponse, user, msg string) (reply, error) {
	src := remoteIP(c.nc.RemoteAddr())
	c.s.rl.Info("kafka authentication failed", "kafka SASL authentication failed",
		"remote", c.nc.RemoteAddr().String(), "user", user, "mechanism", c.sasl.mechanism)
	return c.saslDenied(resp, msg, rc.s.cfg.Users.FailureDelay(src, user))
}

// saslDenied answers SASL_AUTHENTICATION_FAILED with msg after delay and closes.
func (c *conn) saslDenied(resp *kmsg.SASLAuthenticateResponse, msg string, delay time.Duration) (reply, error) {
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	resp.ErrorMessage = strPtr(msg)
	resp.SASLAuthBytes = nil
	c.sasl.mechanism, c.sasl.scram = "", nil
	return &closingReply{resp: resp, delay: delay}, nil
}

func remoteIP(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return a.String()
}
