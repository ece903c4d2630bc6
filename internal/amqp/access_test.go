package amqp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/vhost"
)

// storeServer serves the vhosts "/" and "v2" over a user store: guest (full on "/"),
// alice (configure "^a-", write "^(a-.*|amq.default)$", read "^a-" on "/"), bob (no
// permissions anywhere).
func storeServer(t *testing.T) (string, *auth.Store) {
	t.Helper()
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, users.AddVhost("v2", ""))
	for _, u := range []string{"alice", "bob"} {
		pw := u + "-pw"
		if _, err := users.PutUser(u, &pw, nil); err != nil {
			t.Fatal(err)
		}
	}
	must(t, users.SetPermission("alice", "/", auth.Permission{Configure: "^a-", Write: "^(a-.*|amq.default)$", Read: "^a-"}))
	_, url := startServer(t, Config{Auth: users, Permissions: users, VHosts: newVHosts(vhost.Config{Names: []string{"/", "v2"}})})
	return url, users
}

func userURL(url, user, pass, vh string) string {
	hostPart := url[strings.Index(url, "@")+1:]
	return fmt.Sprintf("amqp://%s:%s@%s%s", user, pass, hostPart, vh)
}

func TestStoreLogin(t *testing.T) {
	url, users := storeServer(t)
	dial(t, userURL(url, "alice", "alice-pw", ""))
	if _, err := amqp091.Dial(userURL(url, "alice", "wrong", "")); !errors.Is(err, amqp091.ErrCredentials) {
		var ae *amqp091.Error
		if !errors.As(err, &ae) || ae.Code != wire.AccessRefused {
			t.Fatalf("wrong password: %v", err)
		}
	}
	// AMQPLAIN too.
	c, err := amqp091.DialConfig(userURL(url, "alice", "alice-pw", ""), amqp091.Config{SASL: []amqp091.Authentication{&amqp091.AMQPlainAuth{Username: "alice", Password: "alice-pw"}}})
	if err != nil {
		t.Fatalf("AMQPLAIN: %v", err)
	}
	c.Close()
	// A password changed in the store applies to the next login.
	must(t, users.SetPassword("alice", "new-pw"))
	if _, err := amqp091.Dial(userURL(url, "alice", "alice-pw", "")); err == nil {
		t.Fatal("old password still accepted")
	}
	dial(t, userURL(url, "alice", "new-pw", ""))
}

func TestVhostAccessRefused(t *testing.T) {
	url, _ := storeServer(t)
	_, err := amqp091.Dial(userURL(url, "bob", "bob-pw", ""))
	wantCode(t, err, wire.NotAllowed, "NOT_ALLOWED - access to vhost '/' refused for user 'bob'")
	_, err = amqp091.Dial(userURL(url, "alice", "alice-pw", "v2"))
	wantCode(t, err, wire.NotAllowed, "NOT_ALLOWED - access to vhost 'v2' refused for user 'alice'")
}

func TestPermissionRefusals(t *testing.T) {
	url, _ := storeServer(t)
	admin := openCh(t, dial(t, url)) // guest: full
	must(t, admin.ExchangeDeclare("b-ex", "direct", false, true, false, false, nil))
	_, err := admin.QueueDeclare("b-q", false, true, false, false, nil)
	must(t, err)
	_, err = admin.QueueDeclare("a-q", false, true, false, false, nil)
	must(t, err)
	must(t, admin.ExchangeDeclare("a-ex", "direct", false, true, false, false, nil))

	alice := dial(t, userURL(url, "alice", "alice-pw", ""))
	const pre = "ACCESS_REFUSED - access to "
	const post = " in vhost '/' refused for user 'alice'"
	cases := []struct {
		name string
		do   func(ch *amqp091.Channel) error
		text string
	}{
		{"queue.declare", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("b-new", false, true, false, false, nil)
			return err
		}, "queue 'b-new'"},
		{"server-named queue.declare", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare("", false, true, true, false, nil)
			return err
		}, "queue 'amq.gen-"},
		{"queue.delete", func(ch *amqp091.Channel) error { _, err := ch.QueueDelete("b-q", false, false, false); return err }, "queue 'b-q'"},
		{"queue.purge", func(ch *amqp091.Channel) error { _, err := ch.QueuePurge("b-q", false); return err }, "queue 'b-q'"},
		{"queue.bind write on queue", func(ch *amqp091.Channel) error { return ch.QueueBind("b-q", "k", "a-ex", false, nil) }, "queue 'b-q'"},
		{"queue.bind read on exchange", func(ch *amqp091.Channel) error { return ch.QueueBind("a-q", "k", "b-ex", false, nil) }, "exchange 'b-ex'"},
		{"queue.unbind", func(ch *amqp091.Channel) error { return ch.QueueUnbind("a-q", "k", "b-ex", nil) }, "exchange 'b-ex'"},
		{"exchange.declare", func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclare("b-new", "fanout", false, true, false, false, nil)
		}, "exchange 'b-new'"},
		{"exchange.delete", func(ch *amqp091.Channel) error { return ch.ExchangeDelete("b-ex", false, false) }, "exchange 'b-ex'"},
		{"exchange.bind write on destination", func(ch *amqp091.Channel) error { return ch.ExchangeBind("b-ex", "k", "a-ex", false, nil) }, "exchange 'b-ex'"},
		{"exchange.bind read on source", func(ch *amqp091.Channel) error { return ch.ExchangeBind("a-ex", "k", "b-ex", false, nil) }, "exchange 'b-ex'"},
		{"basic.get", func(ch *amqp091.Channel) error { _, _, err := ch.Get("b-q", true); return err }, "queue 'b-q'"},
		{"basic.consume", func(ch *amqp091.Channel) error {
			_, err := ch.Consume("b-q", "", true, false, false, false, nil)
			return err
		}, "queue 'b-q'"},
		{"basic.publish", func(ch *amqp091.Channel) error {
			closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
			if err := ch.Publish("b-ex", "k", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
				return err
			}
			select {
			case e := <-closed:
				return e
			case <-testCtx(t).Done():
				return errors.New("channel not closed")
			}
		}, "exchange 'b-ex'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := openCh(t, alice)
			err := tc.do(ch)
			var ae *amqp091.Error
			if !errors.As(err, &ae) || ae.Code != wire.AccessRefused || !strings.HasPrefix(ae.Reason, pre+tc.text) || !strings.HasSuffix(ae.Reason, post) {
				t.Fatalf("got %v, want 403 %q...%q", err, pre+tc.text, post)
			}
		})
	}
	// What alice may do works.
	ch := openCh(t, alice)
	_, err = ch.QueueDeclare("a-new", false, true, false, false, nil)
	must(t, err)
	must(t, ch.QueueBind("a-new", "k", "a-ex", false, nil))
	must(t, ch.Publish("", "a-new", false, false, amqp091.Publishing{Body: []byte("m")}))
	must(t, ch.Publish("a-ex", "k", false, false, amqp091.Publishing{Body: []byte("m")}))
	for range 2 {
		var ok bool
		for !ok {
			_, ok, err = ch.Get("a-new", true)
			must(t, err)
		}
	}
	_, err = ch.QueuePurge("a-new", false)
	must(t, err)
}

func TestUserAndVhostLimits(t *testing.T) {
	users, err := auth.Open(auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pw := "alice-pw"
	if _, err := users.PutUser("alice", &pw, nil); err != nil {
		t.Fatal(err)
	}
	must(t, users.SetPermission("alice", "/", auth.FullPermission))
	must(t, users.SetUserLimit("alice", auth.LimitMaxConnections, 1))
	must(t, users.SetUserLimit("alice", auth.LimitMaxChannels, 2))
	must(t, users.SetVhostLimit("/", auth.LimitMaxQueues, 1))
	_, url := startServer(t, Config{Auth: users, Permissions: users, Limits: users})
	aliceURL := userURL(url, "alice", "alice-pw", "")
	c := dial(t, aliceURL)
	_, err = amqp091.Dial(aliceURL)
	wantCode(t, err, wire.NotAllowed, "NOT_ALLOWED - Connection refused for user 'alice': user connection limit (1) is reached")
	ch1 := openCh(t, c)
	openCh(t, c)
	if _, err := c.Channel(); err == nil {
		t.Fatal("third channel opened over max-channels 2")
	} else {
		wantCode(t, err, wire.NotAllowed, "NOT_ALLOWED - number of channels opened for user 'alice' has reached the maximum allowed user limit of (2)")
	}
	// The connection closed, so alice may connect again (once the server has let it go),
	// and her channels were uncounted.
	var c2 *amqp091.Connection
	for deadline := time.Now().Add(10 * time.Second); c2 == nil; {
		conn, err := amqp091.Dial(aliceURL)
		switch {
		case err == nil:
			c2 = conn
		case time.Now().After(deadline):
			t.Fatalf("alice cannot connect again: %v", err)
		}
	}
	t.Cleanup(func() { c2.Close() })
	c2closed := c2.NotifyClose(make(chan *amqp091.Error, 1))
	ch := openCh(t, c2)
	if _, err := c2.Channel(); err != nil {
		t.Fatalf("second channel: %v (connection closed with %v)", err, <-c2closed)
	}
	_ = ch1
	_, err = ch.QueueDeclare("q1", false, true, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("q1", false, true, false, false, nil) // redeclare: not a new queue
	must(t, err)
	_, err = ch.QueueDeclare("q2", false, true, false, false, nil)
	wantCode(t, err, wire.PreconditionFailed, "PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '/' (1) is reached")
	// vhost max-connections
	must(t, users.SetVhostLimit("/", auth.LimitMaxConnections, 1))
	_, err = amqp091.Dial(url)
	wantCode(t, err, wire.NotAllowed, "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached")
}
