package vhost

// RabbitMQ 3.10 behaviours of queues: length limits after requeues, a TTL of 0, dead-letter
// cycles.

import (
	"errors"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// takeConsumer is a queue.Consumer that takes deliveries while open.
type takeConsumer struct {
	open bool
	got  []string
}

func (c *takeConsumer) TryDeliver(d queue.Delivery) bool {
	if c.open {
		c.got = append(c.got, string(d.Message.Body))
	}
	return c.open
}

func (c *takeConsumer) Cancelled(*queue.Queue, string) {}

func declare(t *testing.T, vh *VHost, name string, args map[string]any) *Queue {
	t.Helper()
	qs, _, err := vh.DeclareQueue(QueueDeclaration{Name: name, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

func publish(t *testing.T, qs *Queue, bodies ...string) error {
	t.Helper()
	for _, b := range bodies {
		if _, err := qs.Publish(&queue.Message{RoutingKey: qs.Name(), Body: []byte(b)}); err != nil {
			return err
		}
	}
	return nil
}

// drain basic.gets every ready message, in order.
func drain(t *testing.T, qs *Queue) []string {
	t.Helper()
	var out []string
	for {
		d, _, ok, err := qs.Get(true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(d.Message.Body))
	}
}

func equal(a []string, b ...string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMaxLengthAfterRequeue: requeued messages count against x-max-length as RabbitMQ counts
// them: drop-head drops (and dead-letters) from the head until the queue fits again;
// reject-publish keeps them and refuses publishes while the queue is over its limit.
func TestMaxLengthAfterRequeue(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	dropped := declare(t, vh, "dropped", nil)
	head := declare(t, vh, "head", map[string]any{"x-max-length": int32(2),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dropped"})
	reject := declare(t, vh, "reject", map[string]any{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	for _, qs := range []*Queue{head, reject} {
		if err := publish(t, qs, "m0", "m1"); err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for range 2 {
			d, _, _, err := qs.Get(false)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, d.ID)
		}
		if err := publish(t, qs, "m2", "m3"); err != nil {
			t.Fatal(err)
		}
		qs.Requeue(ids...)
	}
	if got := drain(t, head); !equal(got, "m2", "m3") {
		t.Fatalf("drop-head queue holds %v after the requeue, want [m2 m3]", got)
	}
	if got := drain(t, dropped); !equal(got, "m0", "m1") {
		t.Fatalf("dead-lettered %v, want [m0 m1]", got)
	}
	if ready, _, _ := reject.Counts(); ready != 4 {
		t.Fatalf("reject-publish queue holds %d, want the 4 requeued and published", ready)
	}
	if err := publish(t, reject, "m4"); !errors.Is(err, queue.ErrRejected) {
		t.Fatalf("publish to a queue over its limit: %v, want it rejected", err)
	}
}

// TestTTLZeroDeliversToWaitingConsumer: x-message-ttl 0 expires only what cannot be delivered
// at once; a consumer with room gets the message.
func TestTTLZeroDeliversToWaitingConsumer(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	expired := declare(t, vh, "expired", nil)
	qs := declare(t, vh, "ttl0", map[string]any{"x-message-ttl": int32(0),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "expired"})
	if err := publish(t, qs, "nobody waits"); err != nil {
		t.Fatal(err)
	}
	c := &takeConsumer{open: true}
	if err := qs.Consume(queue.ConsumerSpec{Tag: "c", NoAck: true, Consumer: c}); err != nil {
		t.Fatal(err)
	}
	if err := publish(t, qs, "delivered"); err != nil {
		t.Fatal(err)
	}
	c.open = false
	if err := publish(t, qs, "no room"); err != nil {
		t.Fatal(err)
	}
	if !equal(c.got, "delivered") {
		t.Fatalf("consumer got %v, want [delivered]", c.got)
	}
	if got := drain(t, expired); !equal(got, "nobody waits", "no room") {
		t.Fatalf("expired %v", got)
	}
	if ready, _, _ := qs.Counts(); ready != 0 {
		t.Fatalf("%d messages left in the queue", ready)
	}
}

// TestDeadLetterCycles: a message dead-lettered back to a queue it already left, with no
// rejection in between, is dropped there (and only there), as RabbitMQ does; a rejection in
// the cycle lets it through.
func TestDeadLetterCycles(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	if err := vh.DeclareExchange(route.Exchange{Name: "dlx", Type: "fanout"}); err != nil {
		t.Fatal(err)
	}
	self := declare(t, vh, "self", map[string]any{"x-dead-letter-exchange": "dlx"})
	witness := declare(t, vh, "witness", nil)
	for _, q := range []string{"self", "witness"} {
		if err := vh.Bind(route.Binding{Source: "dlx", Dest: route.Dest{Name: q}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	args := self.Options().Args
	m := &queue.Message{Exchange: "", RoutingKey: "self", Body: []byte("m")}

	vh.deadLetter(args, []queue.DeadLetter{{Msg: m, Reason: queue.ReasonExpired, Queue: "self"}})
	if got := drain(t, self); len(got) != 0 {
		t.Fatalf("a message that expired from self came back to it: %v", got)
	}
	if got := drain(t, witness); len(got) != 1 {
		t.Fatalf("witness got %v, want the message once", got)
	}

	vh.deadLetter(args, []queue.DeadLetter{{Msg: m, Reason: queue.ReasonRejected, Queue: "self"}})
	if got := drain(t, self); len(got) != 1 {
		t.Fatalf("a rejected message did not come back: %v", got)
	}
	drain(t, witness)

	// Through another queue: expired from self, then from other back to self.
	codec := testCodec{}
	props, _ := withDeath(codec, m, queue.ReasonExpired, "self", time.Now())
	viaOther := &queue.Message{Exchange: "dlx", RoutingKey: "self", Properties: props, Body: []byte("m")}
	vh.deadLetter(args, []queue.DeadLetter{{Msg: viaOther, Reason: queue.ReasonMaxLen, Queue: "other"}})
	if got := drain(t, self); len(got) != 0 {
		t.Fatalf("a two-queue cycle of expiry and maxlen was not broken: %v", got)
	}
	props, _ = withDeath(codec, m, queue.ReasonRejected, "self", time.Now())
	viaOther.Properties = props
	vh.deadLetter(args, []queue.DeadLetter{{Msg: viaOther, Reason: queue.ReasonExpired, Queue: "other"}})
	if got := drain(t, self); len(got) != 1 {
		t.Fatalf("a cycle with a rejection in it was broken: %v", got)
	}
}

// TestExpiringIntoItselfEnds: a queue whose expired messages are dead-lettered back to itself
// (the default exchange, no x-dead-letter-routing-key) drops them instead of cycling forever.
func TestExpiringIntoItselfEnds(t *testing.T) {
	t.Parallel()
	vh := newHosts(t, Config{}).Get("/")
	qs := declare(t, vh, "loop", map[string]any{"x-message-ttl": int32(0), "x-dead-letter-exchange": ""})
	done := make(chan error, 1)
	go func() { done <- publish(t, qs, "m") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the expired message is still cycling")
	}
	if ready, _, _ := qs.Counts(); ready != 0 {
		t.Fatalf("%d messages in the queue", ready)
	}
}
