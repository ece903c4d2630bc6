package vhost

import (
	"errors"
	"testing"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// TestPublish: the one routing and delivery every front end uses (publish.go): bindings,
// CC keys, alternate exchanges, unroutable, quorum queues keeping the message persistent,
// refusals that deliver nothing, a queue that refuses, and the Router's hooks.
func TestPublish(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	decl := func(name string, args map[string]any) *Queue {
		t.Helper()
		qs, _, err := vh.DeclareQueue(QueueDeclaration{Name: name, Durable: true, Args: args})
		if err != nil {
			t.Fatal(err)
		}
		return qs
	}
	a, cc, ae, qq := decl("a", nil), decl("cc", nil), decl("aeq", nil), decl("qq", map[string]any{"x-queue-type": "quorum"})
	decl("full", map[string]any{"x-max-length": int32(0), "x-overflow": "reject-publish"})
	for _, x := range []route.Exchange{{Name: "ae", Type: route.Fanout},
		{Name: "t", Type: route.Topic, Args: map[string]any{"alternate-exchange": "ae"}},
		{Name: "hidden", Type: route.Fanout, Internal: true}} {
		if err := vh.DeclareExchange(x); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []route.Binding{{Source: "ae", Dest: route.Dest{Name: "aeq"}}, {Source: "t", Key: "k.*", Dest: route.Dest{Name: "a"}},
		{Source: "t", Key: "copy", Dest: route.Dest{Name: "cc"}}, {Source: "t", Key: "full", Dest: route.Dest{Name: "full"}}} {
		if err := vh.Bind(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	var enqueued []string
	var failed []string
	r := &Router{Enqueued: func(q *queue.Queue) { enqueued = append(enqueued, q.Name()) },
		Failed: func(q string, _ bool, err error) { failed = append(failed, q) }}
	pub := func(p Publishing) Routed {
		t.Helper()
		res, err := vh.Publish(r, &p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := pub(Publishing{Exchange: "t", RoutingKey: "k.1", Extra: []string{"copy"}, Body: []byte("1")}); res.Queues != 2 || res.Failed || len(res.Waits) != 0 {
		t.Fatalf("topic with a CC key: %+v", res)
	}
	if res := pub(Publishing{Exchange: "t", RoutingKey: "nomatch", Body: []byte("2")}); res.Queues != 1 {
		t.Fatalf("alternate exchange: %+v", res)
	}
	if res := pub(Publishing{RoutingKey: "nosuchqueue"}); res.Queues != 0 || res.Failed {
		t.Fatalf("unroutable: %+v", res)
	}
	if res := pub(Publishing{RoutingKey: "qq", Body: []byte("3")}); res.Queues != 1 {
		t.Fatalf("default exchange to a quorum queue: %+v", res)
	}
	if res := pub(Publishing{Exchange: "t", RoutingKey: "full", Body: []byte("4")}); res.Queues != 0 || !res.Failed {
		t.Fatalf("reject-publish queue: %+v", res)
	}
	if got := len(enqueued); got != 4 || len(failed) != 1 || failed[0] != "full" {
		t.Fatalf("hooks: enqueued %v, failed %v", enqueued, failed)
	}
	for _, c := range []struct {
		q    *Queue
		body string
	}{{a, "1"}, {cc, "1"}, {ae, "2"}, {qq, "3"}} {
		d, _, ok, err := c.q.Get(true)
		if err != nil || !ok || string(d.Message.Body) != c.body {
			t.Fatalf("%s: %v %v %+v", c.q.Name(), ok, err, d.Message)
		}
		if c.q == qq && !d.Message.Persistent {
			t.Fatal("a quorum queue kept a transient message as transient")
		}
	}
	for _, c := range []struct {
		exchange string
		kind     error
	}{{"nosuch", ErrNotFound}, {"hidden", ErrAccessRefused}} {
		if _, err := vh.Publish(r, &Publishing{Exchange: c.exchange, RoutingKey: "k.1"}); !errors.Is(err, c.kind) {
			t.Fatalf("publish to %s: %v, want %v", c.exchange, err, c.kind)
		}
	}
}
