package kafka

// Connection security: SASL state (17_sasl_handshake.go, 36_sasl_authenticate.go), KIP-368
// session expiry, and protected mode (a listener without authentication serves loopback
// clients only unless AllowUnauthenticated).
//
// After SaslHandshake v0 the mechanism's tokens come as bare size-prefixed frames (no request
// header) and are answered the same way (PLAIN's success is an empty token); a failure closes
// the connection without an answer, as Kafka's broker does for clients that predate
// SaslAuthenticate (Kafka 0.10 to 0.11).
//
// On a SASL listener a connection may send ApiVersions, SaslHandshake and SaslAuthenticate
// until it has authenticated; anything else closes it, as Kafka's broker does ("Unexpected
// Kafka request of type X during SASL handshake"). After a failed authentication the
// SaslAuthenticate response carries SASL_AUTHENTICATION_FAILED and a message, then the
// connection is closed.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

type saslState struct {
	required      bool   // the listener requires SASL
	refused       bool   // protected mode: a remote client on an unauthenticated listener
	mechanism     string // chosen by SaslHandshake, "" before
	scram         *auth.ScramServer
	authenticated bool
	rawTokens     bool      // after SaslHandshake v0: the next frames are bare SASL tokens
	expiry        time.Time // session end (KIP-368); zero: none
}

func isLoopbackAddr(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// initSecurity sets the connection's state from its listener's security protocol. A
// connection authenticated by a client certificate (c.principal set) is not refused by
// protected mode; one on a SASL listener has no principal until SaslAuthenticate (the
// certificate's, if any, is replaced then, as Kafka's SASL_SSL does).
func (c *conn) initSecurity(sasl bool) {
	c.sasl.required = sasl
	if sasl {
		return
	}
	if c.principal == auth.Anonymous && !c.s.cfg.AllowUnauthenticated && !c.s.isLoopback(c.nc.RemoteAddr()) {
		c.sasl.refused = true
	}
}

// errRefusedClient closes a connection protected mode refused (logged where decided).
var errRefusedClient = errors.New("unauthenticated listener serves loopback clients only")

const protectedModeMessage = "this listener has no authentication and serves only loopback clients: use a SASL listener, or start yard with --allow-unauthenticated"

// gate decides, before a request is handled, whether the connection's security state lets
// it through: a non-nil reply or error replaces handling.
func (c *conn) gate(hdr *reqHeader) (reply, error) {
	key := kmsg.Key(hdr.key)
	if c.sasl.refused {
		c.s.rl.Warn("kafka protected mode", "refused a remote client on a listener without authentication (protected mode; see --allow-unauthenticated)",
			"remote", c.nc.RemoteAddr().String())
		if key == kmsg.ApiVersions {
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return &closingReply{resp: resp}, nil
		}
		return nil, fmt.Errorf("%s: %w", protectedModeMessage, errRefusedClient)
	}
	if !c.sasl.required {
		return nil, nil
	}
	switch key {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return nil, nil
	}
	if !c.sasl.authenticated {
		return nil, fmt.Errorf("unexpected %s request before SASL authentication", kmsg.NameForKey(hdr.key))
	}
	if !c.sasl.expiry.IsZero() && time.Now().After(c.sasl.expiry) {
		c.s.rl.Info("kafka session expired", "closing kafka connection: SASL session expired without re-authentication (connections.max.reauth.ms)",
			"remote", c.nc.RemoteAddr().String(), "principal", c.principal.String())
		return nil, errors.New("SASL session expired without re-authentication")
	}
	return nil, nil
}

// closingReply writes its response, flushes it and then closes the connection.
type closingReply struct {
	resp  kmsg.Response
	delay time.Duration // waited first (failed logins: slows brute force)
}

var errClosedAfterReply = errors.New("connection closed after its final response")

func (r *closingReply) writeTo(c *conn, hdr *reqHeader) error {
	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	if r.resp != nil { // nil: close without an answer
		if err := c.writeResponse(hdr, r.resp); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.nc.SetReadDeadline(time.Now()) // end the reader; the writer drops the connection
	return errClosedAfterReply
}

// rawSaslToken handles a bare token after SaslHandshake v0 with SaslAuthenticate's logic,
// answering the token bare, or closing without an answer on failure.
func (c *conn) rawSaslToken(frame []byte) (reqHeader, reply, error) {
	hdr := reqHeader{key: int16(kmsg.SASLAuthenticate)}
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SASLAuthBytes = bytes.Clone(frame) // the frame's memory is reused
	r, err := handleSaslAuthenticate(&reqCtx{c: c, s: c.s, hdr: &hdr}, req)
	if err != nil {
		return hdr, nil, err
	}
	switch r := r.(type) {
	case *kmsgReply:
		resp := r.resp.(*kmsg.SASLAuthenticateResponse)
		if c.sasl.authenticated && c.sasl.mechanism == "" {
			c.sasl.rawTokens = false // done: Kafka requests follow
		}
		return hdr, &rawTokenReply{token: resp.SASLAuthBytes}, nil
	case *closingReply:
		c.sasl.rawTokens = false
		return hdr, &closingReply{delay: r.delay}, nil
	}
	panic(fmt.Sprintf("BUG: SaslAuthenticate answered %T", r))
}

// rawTokenReply writes a bare size-prefixed SASL token (SaslHandshake v0).
type rawTokenReply struct{ token []byte }

func (r *rawTokenReply) writeTo(c *conn, _ *reqHeader) error {
	w := c.writer()
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(r.token)))
	if _, err := w.Write(size[:]); err != nil {
		return fmt.Errorf("cannot write SASL token: %w", err)
	}
	if _, err := w.Write(r.token); err != nil {
		return fmt.Errorf("cannot write SASL token: %w", err)
	}
	return nil
}
