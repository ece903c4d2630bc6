package amqp

// The connection class up to connection.open-ok: protocol header, start/start-ok with PLAIN
// and AMQPLAIN, tune/tune-ok, open/open-ok. Written and read synchronously on the reader
// goroutine before the writer starts.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/tlsconf"
)

var (
	errHandshake = errors.New("AMQP handshake failed")
	// errLoginRefused is an errHandshake already logged (rate-limited) where it happened.
	errLoginRefused = fmt.Errorf("login refused: %w", errHandshake)
)

func (c *conn) handshake() error {
	c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.nc.SetDeadline(time.Time{})
	hdr := make([]byte, len(wire.ProtocolHeader))
	if err := c.fr.ReadFull(hdr); err != nil {
		return fmt.Errorf("cannot read protocol header: %w", err)
	}
	if !bytes.Equal(hdr, wire.ProtocolHeader) {
		// The specification's answer to an unsupported protocol: our header, then close.
		c.nc.Write(wire.ProtocolHeader)
		return fmt.Errorf("cannot accept protocol header %q: %w", hdr, errHandshake)
	}
	if err := c.writeNow(&wire.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9, ServerProperties: c.serverProperties(),
		Mechanisms: c.mechanisms(), Locales: "en_US",
	}); err != nil {
		return err
	}
	m, err := c.readHandshake(wire.IDConnectionStartOk)
	if err != nil {
		return err
	}
	startOk := m.(*wire.ConnectionStartOk)
	c.clientCapabilities(startOk.ClientProperties)
	if e := c.authenticate(startOk); e != nil {
		c.srv.rl.Info("AMQP login refused", "AMQP login refused", "remote", c.nc.RemoteAddr().String(), "err", e.text)
		// As RabbitMQ: a client that announced authentication_failure_close is told why
		// (403 in connection.close); to any other the server just closes the socket, as
		// the specification before that capability had it.
		if c.capAuthFailureClose {
			c.refuse(e)
		}
		return fmt.Errorf("cannot log in: %s: %w", e.text, errLoginRefused)
	}
	if err := c.writeNow(&wire.ConnectionTune{
		ChannelMax: c.srv.cfg.ChannelMax, FrameMax: c.srv.cfg.FrameMax, Heartbeat: heartbeatSeconds(c.srv.cfg.Heartbeat),
	}); err != nil {
		return err
	}
	if m, err = c.readHandshake(wire.IDConnectionTuneOk); err != nil {
		return err
	}
	if e := c.negotiate(m.(*wire.ConnectionTuneOk)); e != nil {
		c.refuse(e)
		return fmt.Errorf("cannot tune connection: %s: %w", e.text, errHandshake)
	}
	if m, err = c.readHandshake(wire.IDConnectionOpen); err != nil {
		return err
	}
	open := m.(*wire.ConnectionOpen)
	vh := c.srv.vhosts.Get(open.VirtualHost)
	if vh == nil {
		e := connErr(wire.NotAllowed, open, "vhost %s not found", open.VirtualHost)
		c.refuse(e)
		return fmt.Errorf("cannot open vhost %q: %w", open.VirtualHost, errHandshake)
	}
	if p := c.srv.cfg.Permissions; p != nil && !p.CanAccessVhost(c.user, vh.Name()) {
		// RabbitMQ's words and code (530 NOT_ALLOWED) for a vhost the user has no permissions in.
		e := connErr(wire.NotAllowed, open, "access to vhost '%s' refused for user '%s'", vh.Name(), c.user)
		c.srv.rl.Info("AMQP vhost access refused", "AMQP vhost access refused", "remote", c.nc.RemoteAddr().String(), "user", c.user, "vhost", vh.Name())
		c.refuse(e)
		return fmt.Errorf("cannot open vhost %q: %w", open.VirtualHost, errHandshake)
	}
	if e := c.acquireConn(open, vh.Name()); e != nil {
		c.srv.rl.Info("AMQP connection limit", "AMQP connection refused by a limit", "remote", c.nc.RemoteAddr().String(), "user", c.user, "vhost", vh.Name())
		c.refuse(e)
		return fmt.Errorf("cannot open vhost %q: %s: %w", open.VirtualHost, e.text, errHandshake)
	}
	c.vh = vh
	if c.lc != nil {
		c.lc.SetIdentity(c.user, vh.Name()) // before open-ok: a client that is open is listed
	}
	return c.writeNow(&wire.ConnectionOpenOk{})
}

func heartbeatSeconds(d time.Duration) uint16 {
	if d < 0 {
		return 0
	}
	return uint16(min(d/time.Second, 65535))
}

// buildVersion is the version the binary was built as, from the build information the Go
// toolchain records: the main module's version without its "v" (a tagged release
// "1.2.3", or a pseudo-version naming the commit), else a development version naming the
// commit, else "0.0.0-dev".
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "0.0.0-dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ".dirty"
			}
		}
	}
	if rev == "" {
		return "0.0.0-dev"
	}
	return "0.0.0-dev+" + rev[:min(len(rev), 12)] + dirty
}

// serverProperties are connection.start's, as RabbitMQ's: product, version, platform,
// copyright, information, cluster_name, and the capabilities table, each true because
// yard does it.
func (c *conn) serverProperties() wire.Table {
	return wire.Table{
		"product":      "yard",
		"version":      c.srv.cfg.Version,
		"platform":     "Go " + runtime.Version(),
		"copyright":    "the yard authors",
		"information":  "yard: one broker for the Kafka and AMQP 0-9-1 protocols",
		"cluster_name": "yard",
		"capabilities": wire.Table{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"consumer_priorities":          true,
			"authentication_failure_close": true,
			"per_consumer_qos":             true,
			"direct_reply_to":              true,
		},
	}
}

func (c *conn) clientCapabilities(props wire.Table) {
	caps, _ := props["capabilities"].(wire.Table)
	c.capCancelNotify, _ = caps["consumer_cancel_notify"].(bool)
	c.capBlocked, _ = caps["connection.blocked"].(bool)
	c.capAuthFailureClose, _ = caps["authentication_failure_close"].(bool)
}

// mechanisms is connection.start's list: EXTERNAL first on a TLS connection whose client
// presented a verified certificate (as RabbitMQ with rabbitmq_auth_mechanism_ssl), then
// PLAIN and AMQPLAIN.
func (c *conn) mechanisms() string {
	if _, ok := tlsconf.PeerCertificate(c.nc); ok {
		return "EXTERNAL PLAIN AMQPLAIN"
	}
	return "PLAIN AMQPLAIN"
}

// authenticateExternal logs in as the client certificate's CN (RabbitMQ's default
// ssl_cert_login_from = common_name), if the user backend knows that user.
func (c *conn) authenticateExternal(m *wire.ConnectionStartOk) *amqpError {
	cert, ok := tlsconf.PeerCertificate(c.nc)
	if !ok {
		return connErr(wire.AccessRefused, m, "EXTERNAL login refused: no peer certificate")
	}
	user := tlsconf.SubjectCN(cert)
	var ext ExternalAuthenticator
	if c.srv.cfg.Auth != nil {
		ext, _ = c.srv.cfg.Auth.(ExternalAuthenticator)
	}
	if ext == nil {
		return connErr(wire.AccessRefused, m, "EXTERNAL login refused: the user backend does not accept certificate logins")
	}
	if err := ext.AuthenticateExternal(user); err != nil {
		c.srv.rl.Info("AMQP authentication failed", "AMQP authentication failed", "remote", c.nc.RemoteAddr().String(), "user", user, "err", err)
		return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.")
	}
	if slices.Contains(c.srv.cfg.LoopbackUsers, user) && !isLoopback(c.nc.RemoteAddr()) {
		// The reason is logged; the client is told no more than for a wrong password, as
		// RabbitMQ tells it.
		c.srv.rl.Info("AMQP authentication failed", "AMQP authentication failed", "remote", c.nc.RemoteAddr().String(), "user", user, "err", fmt.Sprintf("user '%s' can only connect via localhost", user))
		return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism %s. For details see the broker logfile.", m.Mechanism)
	}
	c.user = user
	return nil
}

// authenticate checks start-ok's credentials; the guest-like users may come only from
// loopback, as in RabbitMQ.
func (c *conn) authenticate(m *wire.ConnectionStartOk) *amqpError {
	var user, pass string
	switch m.Mechanism {
	case "EXTERNAL":
		return c.authenticateExternal(m)
	case "PLAIN":
		parts := strings.Split(m.Response, "\x00")
		if len(parts) != 3 {
			return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism PLAIN: malformed response")
		}
		user, pass = parts[1], parts[2]
	case "AMQPLAIN":
		// AMQPLAIN's response is a field table without its length prefix.
		t, err := wire.DecodeTable(append(binary.BigEndian.AppendUint32(nil, uint32(len(m.Response))), m.Response...))
		if err != nil {
			return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism AMQPLAIN: malformed response")
		}
		user, _ = t["LOGIN"].(string)
		pass, _ = t["PASSWORD"].(string)
	default:
		return connErr(wire.AccessRefused, m, "unknown authentication mechanism '%s'; this server offers %s", m.Mechanism, c.mechanisms())
	}
	if err := c.srv.cfg.Auth.Authenticate(user, pass); err != nil {
		c.srv.rl.Info("AMQP authentication failed", "AMQP authentication failed", "remote", c.nc.RemoteAddr().String(), "user", user, "err", err)
		if d, ok := c.srv.cfg.Auth.(bruteForceSlowing); ok {
			// Slow down guessing from this source and at this user (internal/auth).
			c.srv.waitOrStop(d.FailureDelay(remoteHost(c.nc.RemoteAddr()), user))
		}
		return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism %s. For details see the broker logfile.", m.Mechanism)
	}
	if slices.Contains(c.srv.cfg.LoopbackUsers, user) && !isLoopback(c.nc.RemoteAddr()) {
		// The reason is logged; the client is told no more than for a wrong password, as
		// RabbitMQ tells it.
		c.srv.rl.Info("AMQP authentication failed", "AMQP authentication failed", "remote", c.nc.RemoteAddr().String(), "user", user, "err", fmt.Sprintf("user '%s' can only connect via localhost", user))
		return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism %s. For details see the broker logfile.", m.Mechanism)
	}
	if d, ok := c.srv.cfg.Auth.(bruteForceSlowing); ok {
		// A success waits behind the failures queued for its source or user: answered at
		// once, its timing would tell it from a failure.
		wait, ok := d.LoginSucceeded(remoteHost(c.nc.RemoteAddr()), user)
		c.srv.waitOrStop(wait)
		if !ok { // too many failures queued: answered as one
			return connErr(wire.AccessRefused, m, "Login was refused using authentication mechanism %s. For details see the broker logfile.", m.Mechanism)
		}
	}
	c.user = user
	return nil
}

// bruteForceSlowing is what an Authenticator that slows down guessing offers
// (internal/auth's Store): the wait before answering a failed or a successful login.
type bruteForceSlowing interface {
	FailureDelay(source, user string) time.Duration
	LoginSucceeded(source, user string) (time.Duration, bool)
}

// waitOrStop waits d, or until the server stops.
func (s *Server) waitOrStop(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-s.stop:
		t.Stop()
	}
}

func remoteHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return a.String()
}

func isLoopback(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return false
}

// refuse sends connection.close and waits briefly for close-ok (authentication_failure_close).
func (c *conn) refuse(e *amqpError) {
	cls, mth := closeFor(e)
	if c.writeNow(&wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.text, ClassId: cls, MethodId: mth}) != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		if f.Type == wire.FrameMethod {
			if m, err := wire.DecodeMethod(f.Payload); err == nil && m.ID() == wire.IDConnectionCloseOk {
				return
			}
		}
	}
}

// negotiate applies tune-ok. A frame_max below the specification's minimum (4096) is
// refused with 530, in RabbitMQ's words.
func (c *conn) negotiate(m *wire.ConnectionTuneOk) *amqpError {
	if m.FrameMax != 0 && m.FrameMax < wire.FrameMinSize {
		return errWithID(wire.NotAllowed, wire.IDConnectionTune, "negotiated frame_max = %d is lower than the minimum allowed value (%d)", m.FrameMax, wire.FrameMinSize)
	}
	c.channelMax = c.srv.cfg.ChannelMax
	if m.ChannelMax != 0 && m.ChannelMax < c.channelMax {
		c.channelMax = m.ChannelMax
	}
	c.frameMax = c.srv.cfg.FrameMax
	if m.FrameMax != 0 && m.FrameMax < c.frameMax {
		c.frameMax = m.FrameMax
	}
	c.fr.SetFrameMax(c.frameMax)
	c.heartbeat = time.Duration(m.Heartbeat) * time.Second
	return nil
}

func (c *conn) writeNow(m wire.Method) error {
	if _, err := c.nc.Write(wire.AppendMethodFrame(nil, 0, m)); err != nil {
		return fmt.Errorf("cannot write %s: %w", m.Name(), err)
	}
	return nil
}

// readHandshake reads the next method on channel 0, skipping heartbeats, and checks it is want.
func (c *conn) readHandshake(want uint32) (wire.Method, error) {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			// As RabbitMQ: once tuned, a malformed or oversized frame is answered with
			// 501 FRAME_ERROR (the stream is out of step: no close-ok is awaited); before,
			// the socket is just closed.
			if want == wire.IDConnectionOpen && (errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrFrameEnd)) {
				e := errWithID(wire.FrameError, 0, "%v", err)
				c.writeNow(&wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.text})
			}
			return nil, fmt.Errorf("cannot read handshake frame: %w", err)
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		var m wire.Method
		if f.Type == wire.FrameMethod && f.Channel == 0 {
			m, err = wire.DecodeMethod(f.Payload)
		}
		if m == nil || err != nil || m.ID() != want {
			wantName := wire.ClassOf(want)
			c.refuse(connErr(wire.CommandInvalid, m, "unexpected frame during handshake (expected method %d.%d)", wantName, wire.MethodOf(want)))
			return nil, fmt.Errorf("cannot complete handshake: unexpected frame: %w", errHandshake)
		}
		return m, nil
	}
}
