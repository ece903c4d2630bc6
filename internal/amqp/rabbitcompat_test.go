package amqp

// Connection- and channel-level behaviours in which yard follows RabbitMQ because clients'
// own test suites (pika, amqplib, the Java client) depend on them.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// rawPublish appends one basic.publish with its content to b.
func rawPublish(b []byte, ch uint16, exchange, key string, props wire.BasicProperties, body []byte) []byte {
	b = wire.AppendMethodFrame(b, ch, &wire.BasicPublish{Exchange: exchange, RoutingKey: key})
	b = wire.AppendHeaderFrame(b, ch, wire.ClassBasic, uint64(len(body)), props.AppendTo(nil))
	return wire.AppendBodyFrames(b, ch, body, 0)
}

// TestConfirmsBeforeChannelCloseOk: a publisher that closes its channel right after
// publishing gets every confirm before channel.close-ok and nothing on the channel after it
// (amqplib fails with "Frame on unknown channel" otherwise): confirms the reader coalesces
// (transient messages) and confirms that wait for an fsync (persistent messages on a
// durable queue) alike.
func TestConfirmsBeforeChannelCloseOk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, url := startServer(t, Config{VHosts: newVHosts(vhost.Config{QueueStore: func(_, name string, o queue.Options) (queue.Store, error) {
		if !o.Durable {
			return queue.MemoryStore{}, nil
		}
		return queue.OpenLogStore(filepath.Join(dir, name), queue.LogStoreOptions{})
	}})})
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			rc := rawDial(t, url, 0)
			q := fmt.Sprintf("confirm-close-%v", durable)
			var props wire.BasicProperties
			if durable {
				props = wire.BasicProperties{Flags: wire.FlagBasicDeliveryMode, DeliveryMode: 2}
			}
			rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
			rc.call(1, &wire.QueueDeclare{Queue: q, Durable: durable}, wire.IDQueueDeclareOk)
			rc.call(1, &wire.ConfirmSelect{}, wire.IDConfirmSelectOk)
			const n = 10
			var b []byte
			for range n {
				b = rawPublish(b, 1, "", q, props, []byte("m"))
			}
			b = wire.AppendMethodFrame(b, 1, &wire.ChannelClose{ReplyCode: 200, ReplyText: "bye"})
			rc.write(b)
			var confirmed uint64
			for {
				m := rc.expectAny()
				if ack, ok := m.(*wire.BasicAck); ok {
					confirmed = ack.DeliveryTag
					continue
				}
				if _, ok := m.(*wire.ChannelCloseOk); !ok {
					t.Fatalf("got %s, want basic.ack or channel.close-ok", m.Name())
				}
				break
			}
			if confirmed != n {
				t.Fatalf("confirmed up to %d before close-ok, want %d", confirmed, n)
			}
			// Nothing more may come on channel 1: the next frame is channel 2's open-ok.
			rc.send(2, &wire.ChannelOpen{})
			f := rc.next()
			for f.Type == wire.FrameHeartbeat {
				f = rc.next()
			}
			if m, _ := wire.DecodeMethod(f.Payload); f.Channel != 2 || m == nil || m.ID() != wire.IDChannelOpenOk {
				t.Fatalf("got frame type %d on channel %d (%v) after channel.close-ok, want channel.open-ok on 2", f.Type, f.Channel, m)
			}
		})
	}
}

// TestConnectionCloseOkWithoutReset: frames that follow connection.close (a client's
// publishes still in flight) are read and discarded; the client reads close-ok and then a
// clean end of stream, and its writes do not fail with EPIPE or ECONNRESET.
func TestConnectionCloseOkWithoutReset(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawDial(t, url, 0)
	rc.call(1, &wire.ChannelOpen{}, wire.IDChannelOpenOk)
	b := wire.AppendMethodFrame(nil, 0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	body := make([]byte, 100<<10)
	for range 10 { // 1 MB of trailing publishes, more than the server's read buffer holds
		b = rawPublish(b, 1, "", "nowhere", wire.BasicProperties{}, body)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := rc.nc.Write(b)
		if err == nil {
			err = rc.nc.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	if m := rc.expectAny(); m.ID() != wire.IDConnectionCloseOk {
		t.Fatalf("got %s, want connection.close-ok", m.Name())
	}
	if f, err := rc.fr.ReadFrame(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close-ok: frame type %d, err %v; want EOF", f.Type, err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("client's trailing frames: %v", err)
	}
}

// TestHeartbeatEveryHalfInterval: the writer sends a heartbeat on every tick (half the
// negotiated interval) after which nothing else was written, as RabbitMQ does; a heartbeat
// is not itself "something written" that would skip the next tick.
func TestHeartbeatEveryHalfInterval(t *testing.T) {
	t.Parallel()
	srv := NewServer(Config{})
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	server, client := net.Pipe()
	defer client.Close()
	c := newConn(srv, server)
	c.heartbeat = time.Hour
	tick := make(chan time.Time)
	c.heartbeatTick = tick
	go c.writeLoop()
	defer c.stopWriter()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := wire.NewFrameReader(client, 4096)
	next := func() wire.Frame {
		t.Helper()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no frame: %v", err)
		}
		return f
	}
	for i := range 4 { // an idle connection: one heartbeat per tick
		tick <- time.Now()
		if f := next(); f.Type != wire.FrameHeartbeat {
			t.Fatalf("tick %d: frame type %d, want a heartbeat", i, f.Type)
		}
	}
	// Output since the last tick: the next tick sends nothing, the one after does.
	c.send(1, &wire.ChannelFlowOk{Active: true})
	if f := next(); f.Type != wire.FrameMethod {
		t.Fatalf("frame type %d, want the method", f.Type)
	}
	tick <- time.Now()
	c.send(1, &wire.ChannelFlowOk{Active: true})
	if f := next(); f.Type != wire.FrameMethod {
		t.Fatalf("frame type %d after a tick that followed output, want the method (no heartbeat)", f.Type)
	}
	tick <- time.Now() // output since the previous tick again: nothing
	tick <- time.Now()
	if f := next(); f.Type != wire.FrameHeartbeat {
		t.Fatalf("frame type %d, want a heartbeat", f.Type)
	}
}

// wantChannelClosed checks that ch is already closed (a synchronous method on it fails)
// and that the server closed it with 406 and text.
func wantChannelClosed(t *testing.T, ch *amqp091.Channel, closed <-chan *amqp091.Error, q, text string) {
	t.Helper()
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
		t.Fatal("the channel is still open")
	}
	e := <-closed
	if e == nil || e.Code != 406 || e.Reason != text {
		t.Fatalf("channel closed with %v, want 406 %q", e, text)
	}
}

// getN publishes n messages to a fresh queue and basic.gets them on ch (tags 1..n).
func getN(t *testing.T, ch *amqp091.Channel, q string, n int) {
	t.Helper()
	_, err := ch.QueueDeclare(q, false, false, false, false, nil)
	must(t, err)
	for i := range n {
		must(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: []byte{byte('a' + i)}}))
	}
	for i := range n {
		d, ok, err := ch.Get(q, false)
		must(t, err)
		if !ok || d.DeliveryTag != uint64(i+1) {
			t.Fatalf("get %d: ok=%v tag %d", i, ok, d.DeliveryTag)
		}
	}
}

// TestTxUnknownAckClosesAtOnce: in a transaction, an ack of an unknown or already acked
// tag closes the channel when it arrives, as RabbitMQ, not at tx.commit.
func TestTxUnknownAckClosesAtOnce(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	conn := dial(t, url)
	for _, twice := range []bool{false, true} {
		ch := openCh(t, conn)
		q := fmt.Sprintf("tx-unknown-%v", twice)
		getN(t, ch, q, 2)
		closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
		must(t, ch.Tx())
		tag := uint64(7)
		if twice {
			tag = 1
			must(t, ch.Ack(1, false))
		}
		must(t, ch.Ack(tag, false))
		// Not a tx.commit: the channel must already be closed.
		wantChannelClosed(t, ch, closed, q, fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", tag))
	}
}

// TestTxAckedNotRecovered: a delivery acked inside an open transaction is off the channel's
// books: basic.recover requeues only the others; tx.rollback puts it back.
func TestTxAckedNotRecovered(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	conn := dial(t, url)
	ch := openCh(t, conn)
	getN(t, ch, "tx-recover", 3)
	must(t, ch.Tx())
	must(t, ch.Ack(1, false))
	must(t, ch.Recover(true)) // requeues 2 and 3, not 1
	other := openCh(t, conn)
	for _, want := range []string{"b", "c"} {
		d, ok, err := other.Get("tx-recover", true)
		must(t, err)
		if !ok || string(d.Body) != want || !d.Redelivered {
			t.Fatalf("got ok=%v %q redelivered=%v, want %q redelivered", ok, d.Body, d.Redelivered, want)
		}
	}
	if _, ok, err := other.Get("tx-recover", true); err != nil || ok {
		t.Fatalf("queue not empty (ok=%v, err %v): the ack in the transaction was recovered", ok, err)
	}
	must(t, ch.TxRollback()) // the ack is undone: tag 1 is outstanding again
	must(t, ch.Ack(1, false))
	must(t, ch.TxCommit())
	q, err := other.QueueDeclarePassive("tx-recover", false, false, false, false, nil)
	must(t, err)
	if q.Messages != 0 {
		t.Fatalf("%d messages left after commit", q.Messages)
	}
}

// TestMultipleAckOfSettledTag: an ack or nack with multiple=true naming a tag that is not
// outstanding closes the channel with 406, as RabbitMQ, even if earlier tags are.
func TestMultipleAckOfSettledTag(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	conn := dial(t, url)
	for i, settle := range []func(ch *amqp091.Channel) error{
		func(ch *amqp091.Channel) error { return ch.Ack(2, true) },
		func(ch *amqp091.Channel) error { return ch.Nack(2, true, true) },
	} {
		ch := openCh(t, conn)
		q := fmt.Sprintf("multi-settled-%d", i)
		getN(t, ch, q, 3)
		closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
		must(t, ch.Ack(2, false))
		must(t, settle(ch))
		wantChannelClosed(t, ch, closed, q, "PRECONDITION_FAILED - unknown delivery tag 2")
	}
}

// TestUserIDChecked: a message whose user_id property is not the logged-in user's name is
// refused with 406, as RabbitMQ; the user's own name passes.
func TestUserIDChecked(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	conn := dial(t, url)
	ch := openCh(t, conn)
	_, err := ch.QueueDeclare("user-id", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Publish("", "user-id", false, false, amqp091.Publishing{UserId: "guest", Body: []byte("mine")}))
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	must(t, ch.Publish("", "user-id", false, false, amqp091.Publishing{UserId: "x", Body: []byte("forged")}))
	wantChannelClosed(t, ch, closed, "user-id", "PRECONDITION_FAILED - user_id property set to 'x' but authenticated user was 'guest'")
	q, err := openCh(t, conn).QueueDeclarePassive("user-id", false, false, false, false, nil)
	must(t, err)
	if q.Messages != 1 {
		t.Fatalf("%d messages in the queue, want only the one with the right user_id", q.Messages)
	}
}

// rawStart connects and reads connection.start.
func rawStart(t *testing.T, url string) *rawClient {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:guest@"), "/")
	nc, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, nc: nc, fr: wire.NewFrameReader(nc, 4096)}
	rc.fr.SetFrameMax(0)
	rc.write(wire.ProtocolHeader)
	rc.expect(wire.IDConnectionStart)
	return rc
}

// expectEOF checks that the server closes the connection without sending another frame.
func (rc *rawClient) expectEOF() {
	rc.t.Helper()
	f, err := rc.fr.ReadFrame()
	if err == nil {
		m, _ := wire.DecodeMethod(f.Payload)
		rc.t.Fatalf("got frame type %d (%v), want the connection closed", f.Type, m)
	}
	if !errors.Is(err, io.EOF) {
		rc.t.Fatalf("got %v, want EOF", err)
	}
}

// TestAuthFailureCloseOnlyWithCapability: a refused login is answered with connection.close
// 403 only to a client that announced authentication_failure_close; any other is
// disconnected without a word, as RabbitMQ does.
func TestAuthFailureCloseOnlyWithCapability(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	for _, capable := range []bool{true, false} {
		rc := rawStart(t, url)
		props := wire.Table{"product": "test", "capabilities": wire.Table{"authentication_failure_close": capable}}
		rc.send(0, &wire.ConnectionStartOk{ClientProperties: props, Mechanism: "PLAIN", Response: "\x00guest\x00wrong", Locale: "en_US"})
		if !capable {
			rc.expectEOF()
			continue
		}
		m := rc.expect(wire.IDConnectionClose).(*wire.ConnectionClose)
		if m.ReplyCode != 403 || m.ReplyText != "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile." {
			t.Fatalf("connection.close %d %q", m.ReplyCode, m.ReplyText)
		}
		rc.send(0, &wire.ConnectionCloseOk{})
	}
}

// TestTuneOkFrameMaxBelowMinimum: tune-ok's frame_max below 4096 is refused with 530, in
// RabbitMQ's words, naming connection.tune.
func TestTuneOkFrameMaxBelowMinimum(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawStart(t, url)
	rc.send(0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	rc.expect(wire.IDConnectionTune)
	rc.send(0, &wire.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 1024, Heartbeat: 0})
	rc.send(0, &wire.ConnectionOpen{VirtualHost: "/"})
	m := rc.expect(wire.IDConnectionClose).(*wire.ConnectionClose)
	if m.ReplyCode != 530 || m.ReplyText != "NOT_ALLOWED - negotiated frame_max = 1024 is lower than the minimum allowed value (4096)" || m.ClassId != 10 || m.MethodId != 30 {
		t.Fatalf("connection.close %d %q %d.%d", m.ReplyCode, m.ReplyText, m.ClassId, m.MethodId)
	}
	rc.send(0, &wire.ConnectionCloseOk{})
}

// TestHandshakeFrameLimit: before tune-ok frames are limited to 4096 bytes, as RabbitMQ's
// initial_frame_max; a larger one ends the connection.
func TestHandshakeFrameLimit(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawStart(t, url)
	props := wire.Table{"product": "test", "padding": strings.Repeat("x", 5000)}
	rc.send(0, &wire.ConnectionStartOk{ClientProperties: props, Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	rc.expectEOF()
}

// TestServerProperties: connection.start names yard and the version it was built as, and
// advertises RabbitMQ's capabilities table.
func TestServerProperties(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	conn := dial(t, url)
	p := conn.Properties
	v, _ := p["version"].(string)
	if p["product"] != "yard" || v == "" || v == "0.1.0" || v != buildVersion() || v[0] < '0' || v[0] > '9' {
		t.Fatalf("product %v version %q", p["product"], v)
	}
	for _, k := range []string{"platform", "copyright", "information", "cluster_name"} {
		if s, _ := p[k].(string); s == "" {
			t.Errorf("no %s", k)
		}
	}
	caps, _ := p["capabilities"].(amqp091.Table)
	want := []string{"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
		"connection.blocked", "consumer_priorities", "authentication_failure_close", "per_consumer_qos", "direct_reply_to"}
	for _, k := range want {
		if caps[k] != true {
			t.Errorf("capability %s: %v", k, caps[k])
		}
	}
	if len(caps) != len(want) {
		t.Errorf("capabilities %v", caps)
	}
}

// tokens is a user backend of tokens: any listed token logs its user in, and, as tokens
// expire, it re-checks a new one (a SecretUpdater).
type tokens map[string]string // token -> user

func (tk tokens) Authenticate(user, secret string) error {
	if tk[secret] != user {
		return errors.New("invalid token")
	}
	return nil
}

func (tk tokens) UpdateSecret(user, secret string) error { return tk.Authenticate(user, secret) }

// TestUpdateSecretRechecksTokens: connection.update-secret re-authenticates the
// connection's user with the new secret through a user backend whose secrets expire, as
// RabbitMQ (its OAuth 2 backend): a valid new token is accepted, an invalid one closes the
// connection with 530 in RabbitMQ's words.
func TestUpdateSecretRechecksTokens(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{Auth: tokens{"token-1": "svc", "token-2": "svc", "token-other": "other"}})
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:guest@"), "/")
	c, err := amqp091.Dial("amqp://svc:token-1@" + addr + "/")
	must(t, err)
	defer c.Close()
	must(t, c.UpdateSecret("token-2", "token refreshed"))
	ch := openCh(t, c) // still usable
	_, err = ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
	wantCode(t, c.UpdateSecret("token-other", "someone else's"), 530, "NOT_ALLOWED - New secret was refused by one of the backends")
	if !c.IsClosed() {
		t.Fatal("connection still open after a refused secret")
	}
}

// TestUpdateSecretPasswordUser: a password user's connection.update-secret is accepted
// whatever the new secret, as RabbitMQ's internal backend (whose credentials do not
// expire) does; clients' own tests (the .NET client's, for one) send an arbitrary secret
// to RabbitMQ and expect update-secret-ok. The connection goes on.
func TestUpdateSecretPasswordUser(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	c := dial(t, url)
	must(t, c.UpdateSecret("new secret", "no reason"))
	ch := openCh(t, c)
	_, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(t, err)
}

// TestReadDeadlineTwoIntervals: whenever the reader waits, the read deadline in force is at
// least two heartbeat intervals away, however recently it was armed; a peer is dropped
// after two missed intervals, as RabbitMQ, never after fewer.
func TestReadDeadlineTwoIntervals(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_000_000, 0)
	for _, hb := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 60 * time.Second} {
		var armed, deadline time.Time
		for step := time.Duration(0); step < 3*hb; step += 50 * time.Millisecond {
			now := base.Add(step)
			if d, ok := readDeadline(now, armed, hb); ok {
				armed, deadline = now, d
			}
			if deadline.Before(now.Add(2 * hb)) {
				t.Fatalf("heartbeat %s: at %s the deadline is %s away, want at least %s", hb, step, deadline.Sub(now), 2*hb)
			}
			if deadline.After(now.Add(2*hb + 2*time.Second)) {
				t.Fatalf("heartbeat %s: at %s the deadline is %s away", hb, step, deadline.Sub(now))
			}
		}
	}
}

// TestFrameErrorAfterTuning: an oversized frame between tune-ok and open-ok is answered with
// 501 FRAME_ERROR, as RabbitMQ answers frame errors once tuned.
func TestFrameErrorAfterTuning(t *testing.T) {
	t.Parallel()
	_, url := startServer(t, Config{})
	rc := rawStart(t, url)
	rc.send(0, &wire.ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US"})
	rc.expect(wire.IDConnectionTune)
	rc.send(0, &wire.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 4096, Heartbeat: 0})
	rc.write([]byte{wire.FrameMethod, 0, 0, 0, 0, 0x13, 0x88}) // a 5000-byte payload announced
	m := rc.expect(wire.IDConnectionClose).(*wire.ConnectionClose)
	if m.ReplyCode != 501 || !strings.HasPrefix(m.ReplyText, "FRAME_ERROR - ") {
		t.Fatalf("connection.close %d %q", m.ReplyCode, m.ReplyText)
	}
}
