package quorum

import (
	"bytes"
	"slices"
	"testing"
)

// TestPurgeKeepsCheckedOut: a purge removes the ready messages (returned ones too), not
// what consumers hold, the same on every replica, and answers how many it removed.
func TestPurgeKeepsCheckedOut(t *testing.T) {
	q1, q2 := New(1, NoLimits, &recorder{}), New(2, NoLimits, &recorder{})
	l := &log{t: t, qs: []*Queue{q1, q2}}
	for range 5 {
		l.apply(Enqueue("", "q", nil, []byte("m")))
	}
	l.apply(Checkout(c1, 2)) // holds 1, 2
	l.apply(Return(c1, 1))   // 1 returned, then handed out again: holds 2, 1... prefetch 2
	if n := l.apply(Purge()); n != 3 {
		t.Fatalf("purge removed %v, want 3", n)
	}
	for _, q := range l.qs {
		if ready, unacked, _ := q.Counts(); ready != 0 || unacked != 2 {
			t.Fatalf("after purge: %d ready, %d unacked", ready, unacked)
		}
	}
	a, _ := q1.Snapshot()
	b, _ := q2.Snapshot()
	if !bytes.Equal(a, b) {
		t.Fatal("replicas differ after purge")
	}
	l.apply(Enqueue("", "q", nil, []byte("after")))
	if ready, _, _ := q1.Counts(); ready != 1 {
		t.Fatalf("%d ready after a new enqueue", ready)
	}
}

// TestGet: a get checks out one message to a transient consumer that is not counted and
// takes no deliveries; returning it counts a delivery and requeues it (redelivered), acking
// it removes it; with no-ack it is gone at once; an empty queue answers no message.
func TestGet(t *testing.T) {
	r1 := &recorder{}
	q1 := New(1, NoLimits, r1)
	l := &log{t: t, qs: []*Queue{q1}}
	if res := l.apply(Get(ConsumerID{1, "g0"}, false)).(GetResult); res.Message != nil {
		t.Fatalf("get from an empty queue: %+v", res)
	}
	l.apply(Enqueue("", "q", nil, []byte("a")))
	l.apply(Enqueue("", "q", nil, []byte("b")))
	g1 := ConsumerID{1, "g1"}
	res := l.apply(Get(g1, false)).(GetResult)
	if res.Message == nil || string(res.Message.Body) != "a" || res.Remaining != 1 || res.Redelivered {
		t.Fatalf("get: %+v", res)
	}
	if ready, unacked, consumers := q1.Counts(); ready != 1 || unacked != 1 || consumers != 0 {
		t.Fatalf("after get: %d ready, %d unacked, %d consumers", ready, unacked, consumers)
	}
	l.apply(Return(g1, res.Message.ID))
	g2 := ConsumerID{1, "g2"}
	res = l.apply(Get(g2, false)).(GetResult)
	if string(res.Message.Body) != "a" || res.Message.DeliveryCount != 1 || !res.Redelivered {
		t.Fatalf("get after return: %+v %+v", res, res.Message)
	}
	l.apply(Settle(g2, res.Message.ID))
	res = l.apply(Get(ConsumerID{1, "g3"}, true)).(GetResult)
	if string(res.Message.Body) != "b" || res.Remaining != 0 {
		t.Fatalf("no-ack get: %+v", res)
	}
	if ready, unacked, consumers := q1.Counts(); ready != 0 || unacked != 0 || consumers != 0 {
		t.Fatalf("at the end: %d ready, %d unacked, %d consumers", ready, unacked, consumers)
	}
	if len(r1.deliveries) != 0 {
		t.Fatalf("a get consumer got deliveries: %v", ids(r1.deliveries))
	}
	// a real consumer arriving does not serve the get consumer
	l.apply(Enqueue("", "q", nil, []byte("c")))
	l.apply(Get(ConsumerID{1, "g4"}, false))
	l.apply(Enqueue("", "q", nil, []byte("d")))
	l.apply(Checkout(c1, 0))
	if got := ids(r1.deliveries); len(got) != 1 {
		t.Fatalf("consumer deliveries %v", got)
	}
}

// TestExpire: a message's expiry comes from its enqueue's clock and the smaller of the
// queue's and its own TTL; Expire dead-letters (reason expired) the ready messages expired
// at the command's time, never a held one, on every replica alike; commands survive encoding.
func TestExpire(t *testing.T) {
	cfg := NoLimits
	cfg.MessageTTL = 1000
	r1, r2 := &recorder{}, &recorder{}
	q1, q2 := New(1, cfg, r1), New(2, cfg, r2)
	l := &log{t: t, qs: []*Queue{q1, q2}}
	l.apply(Enqueue("", "q", nil, []byte("a")).WithClock(10_000, -1))  // 1: expires at 11000
	l.apply(Enqueue("", "q", nil, []byte("b")).WithClock(10_000, 200)) // 2: 10200
	l.apply(Enqueue("", "q", nil, []byte("c")).WithClock(10_500, -1))  // 3: 11500
	l.apply(Enqueue("", "q", nil, []byte("d")))                        // 4: no clock: never
	if next := q1.NextExpiry(); next != 10200 {
		t.Fatalf("next expiry %d", next)
	}
	l.apply(Checkout(c2, 1)) // holds 1
	l.apply(Expire(10_199))
	if len(r1.dead) != 0 {
		t.Fatalf("expired early: %v", r1.dead)
	}
	l.apply(Expire(11_000))
	if !slices.Equal(r1.dead, []string{"2:expired"}) || !slices.Equal(r2.dead, r1.dead) {
		t.Fatalf("dead-lettered %v and %v, want 2 (1 is held)", r1.dead, r2.dead)
	}
	l.apply(Return(c2, 1)) // 1 back, expired: the consumer gets it again first (prefetch 1)
	l.apply(Cancel(c2))
	l.apply(Down(c2))
	l.apply(Expire(20_000))
	if !slices.Equal(r1.dead, []string{"2:expired", "1:expired", "3:expired"}) {
		t.Fatalf("dead-lettered %v", r1.dead)
	}
	if ready, _, _ := q1.Counts(); ready != 1 {
		t.Fatalf("%d ready, want 1 (d, without expiry)", ready)
	}
	a, _ := q1.Snapshot()
	b, _ := q2.Snapshot()
	if !bytes.Equal(a, b) {
		t.Fatal("replicas differ")
	}
	for _, c := range []Command{Expire(42), Enqueue("x", "k", []byte{1}, []byte("b")).WithClock(7, 9)} {
		d, err := DecodeCommand(c.Encode())
		if err != nil || d.now != c.now || d.ttl != c.ttl || d.kind != c.kind {
			t.Fatalf("%+v decoded as %+v, %v", c, d, err)
		}
	}
}

// TestSingleActiveConsumer: with x-single-active-consumer only the first consumer gets
// deliveries; when it is cancelled or goes down the next takes over, with what it held.
func TestSingleActiveConsumer(t *testing.T) {
	cfg := NoLimits
	cfg.SingleActive = true
	r1, r2 := &recorder{}, &recorder{}
	q1, q2 := New(1, cfg, r1), New(2, cfg, r2)
	l := &log{t: t, qs: []*Queue{q1, q2}}
	l.apply(Checkout(c1, 2))
	l.apply(Checkout(c2, 2))
	for range 4 {
		l.apply(Enqueue("", "q", nil, []byte("m")))
	}
	if got := ids(r1.deliveries); !slices.Equal(got, []uint64{3, 4}) || len(r2.deliveries) != 0 {
		t.Fatalf("active got %v, the other %v", got, ids(r2.deliveries))
	}
	l.apply(Settle(c1, 3)) // room: 5 goes to c1 again
	if got := ids(r1.deliveries); !slices.Equal(got, []uint64{3, 4, 5}) || len(r2.deliveries) != 0 {
		t.Fatalf("active got %v, the other %v", got, ids(r2.deliveries))
	}
	l.apply(Down(c1)) // 4 and 5 return: c2 takes over
	if got := ids(r2.deliveries); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("next active got %v", got)
	}
}
