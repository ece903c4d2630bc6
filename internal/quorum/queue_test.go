package quorum

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/yardmq/yard/internal/cluster"
)

// recorder keeps the effects a replica was given.
type recorder struct {
	deliveries []Delivery
	dead       []string // "id:reason"
}

func (r *recorder) Deliver(d Delivery) { r.deliveries = append(r.deliveries, d) }
func (r *recorder) DeadLetter(m *Message, reason string) {
	r.dead = append(r.dead, fmt.Sprintf("%d:%s", m.ID, reason))
}

// log applies commands to replicas at consecutive indexes.
type log struct {
	t     *testing.T
	index uint64
	qs    []*Queue
}

func (l *log) apply(c Command) any {
	l.t.Helper()
	l.index++
	var first any
	for i, q := range l.qs {
		v, err := q.Apply(cluster.Entry{Index: l.index, Term: 1, Data: c.Encode()})
		if err != nil {
			l.t.Fatal(err)
		}
		if i == 0 {
			first = v
		}
	}
	return first
}

func ids(ds []Delivery) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Message.ID)
	}
	return out
}

var (
	c1 = ConsumerID{Node: 1, Key: "conn1/ch1/ctag"}
	c2 = ConsumerID{Node: 2, Key: "conn7/ch1/ctag"}
)

func TestDeliverSettleReturn(t *testing.T) {
	r1, r2 := &recorder{}, &recorder{}
	q1 := New(1, NoLimits, r1)
	q2 := New(2, NoLimits, r2)
	l := &log{t: t, qs: []*Queue{q1, q2}}
	for i := range 4 {
		res := l.apply(Enqueue("ex", "rk", []byte{0}, []byte(fmt.Sprint("m", i)))).(EnqueueResult)
		if !res.Accepted || res.ID != uint64(i+1) {
			t.Fatalf("enqueue %d: %+v", i, res)
		}
	}
	l.apply(Checkout(c1, 1)) // 5
	l.apply(Checkout(c2, 2)) // 6
	// Each replica hands out only its own node's deliveries; together they are the decision.
	if got := ids(r1.deliveries); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("node 1 deliveries %v", got)
	}
	if got := ids(r2.deliveries); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("node 2 deliveries %v", got)
	}
	l.apply(Settle(c1, 1)) // c1 has room: gets 4
	if got := ids(r1.deliveries); !slices.Equal(got, []uint64{1, 4}) {
		t.Fatalf("node 1 deliveries %v", got)
	}
	l.apply(Return(c2, 2)) // c2 gets 2 back, redelivered, with its delivery count
	last := r2.deliveries[len(r2.deliveries)-1]
	if last.Message.ID != 2 || !last.Redelivered || last.Message.DeliveryCount != 1 {
		t.Fatalf("redelivery %+v %+v", last, last.Message)
	}
	l.apply(Down(c2)) // 2 and 3 return, without counting, and go to c1 once it has room
	if ready, unacked, consumers := q1.Counts(); ready != 2 || unacked != 1 || consumers != 1 {
		t.Fatalf("counts %d %d %d", ready, unacked, consumers)
	}
	l.apply(Settle(c1, 4))
	last = r1.deliveries[len(r1.deliveries)-1]
	// returned by down in id order, 2 first; 2 keeps the count of its earlier return
	if last.Message.ID != 2 || !last.Redelivered || last.Message.DeliveryCount != 1 {
		t.Fatalf("after down %+v %+v", last, last.Message)
	}
	assertSameSnapshots(t, l.qs)
}

func TestDeliveryLimit(t *testing.T) {
	r := &recorder{}
	cfg := NoLimits
	cfg.DeliveryLimit = 2
	l := &log{t: t, qs: []*Queue{New(1, cfg, r)}}
	l.apply(Enqueue("ex", "rk", nil, []byte("poison")))
	l.apply(Checkout(c1, 0))
	for range 3 {
		l.apply(Return(c1, 1))
	}
	if len(r.deliveries) != 3 || r.deliveries[2].Message.DeliveryCount != 2 {
		t.Fatalf("deliveries %+v", r.deliveries)
	}
	if !slices.Equal(r.dead, []string{"1:delivery_limit"}) {
		t.Fatalf("dead %v", r.dead)
	}
	l.apply(Enqueue("ex", "rk", nil, []byte("bad")))
	l.apply(Discard(c1, 6))
	if !slices.Equal(r.dead, []string{"1:delivery_limit", "6:rejected"}) {
		t.Fatalf("dead %v", r.dead)
	}
}

func TestOverflow(t *testing.T) {
	r := &recorder{}
	cfg := NoLimits
	cfg.MaxLength = 2
	l := &log{t: t, qs: []*Queue{New(1, cfg, r)}}
	for range 3 {
		l.apply(Enqueue("ex", "rk", nil, []byte("x")))
	}
	if !slices.Equal(r.dead, []string{"1:maxlen"}) {
		t.Fatalf("drop-head dead %v", r.dead)
	}
	cfg.Overflow = OverflowRejectPublish
	cfg.MaxLength, cfg.MaxLengthBytes = -1, 5
	l = &log{t: t, qs: []*Queue{New(1, cfg, r)}}
	if res := l.apply(Enqueue("ex", "rk", nil, []byte("abc"))).(EnqueueResult); !res.Accepted {
		t.Fatal("refused under the limit")
	}
	if res := l.apply(Enqueue("ex", "rk", nil, []byte("abc"))).(EnqueueResult); res.Accepted {
		t.Fatal("accepted over the byte limit")
	}
}

// TestDeterministic applies the same random commands to three replicas, one of which is
// restored from another's snapshot half way, and checks that all hold the same state and
// that their deliveries together are each message's only delivery at a time.
func TestDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rs := []*recorder{{}, {}, {}}
	qs := []*Queue{New(1, NoLimits, rs[0]), New(2, NoLimits, rs[1]), New(3, NoLimits, rs[2])}
	cfg := NoLimits
	cfg.DeliveryLimit = 3
	for i := range qs {
		qs[i].cfg = cfg
	}
	l := &log{t: t, qs: qs}
	consumers := []ConsumerID{c1, c2, {Node: 3, Key: "a"}, {Node: 3, Key: "b"}}
	held := func(c ConsumerID) []uint64 {
		var out []uint64
		for _, q := range qs {
			if k := q.find(c); k != nil && q.self == c.Node {
				out = slices.Sorted(mapKeys(k.held))
			}
		}
		return out
	}
	for step := range 2000 {
		c := consumers[rng.IntN(len(consumers))]
		switch rng.IntN(8) {
		case 0, 1, 2:
			l.apply(Enqueue("ex", "rk", []byte{1}, fmt.Appendf(nil, "m%d", step)))
		case 3:
			l.apply(Checkout(c, uint32(rng.IntN(4))))
		case 4:
			if h := held(c); len(h) > 0 {
				l.apply(Settle(c, h[rng.IntN(len(h))]))
			}
		case 5:
			if h := held(c); len(h) > 0 {
				l.apply(Return(c, h...))
			}
		case 6:
			if h := held(c); len(h) > 0 {
				l.apply(Discard(c, h[0]))
			}
		case 7:
			if rng.IntN(4) == 0 {
				l.apply(Down(c))
			} else {
				l.apply(Cancel(c))
			}
		}
		if step == 1000 {
			snap, err := qs[0].Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			fresh := New(3, cfg, rs[2])
			if err := fresh.Restore(snap); err != nil {
				t.Fatal(err)
			}
			qs[2] = fresh
		}
	}
	assertSameSnapshots(t, qs)
	// Every replica decided the same dead letters.
	if !slices.Equal(rs[0].dead, rs[1].dead) || len(rs[0].dead) == 0 {
		t.Fatalf("dead letters differ or none: %d %d", len(rs[0].dead), len(rs[1].dead))
	}
}

// assertSameSnapshots checks that the replicas' states are equal, and that a snapshot
// restores to the same state (round trip).
func assertSameSnapshots(t *testing.T, qs []*Queue) {
	t.Helper()
	want, err := qs[0].Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs[1:] {
		got, _ := q.Snapshot()
		if !bytes.Equal(got, want) {
			t.Fatalf("replicas differ:\n%s\n%s", want, got)
		}
	}
	r := New(9, qs[0].cfg, nil)
	if err := r.Restore(want); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Snapshot(); !bytes.Equal(got, want) {
		t.Fatalf("snapshot round trip differs:\n%s\n%s", want, got)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []Command{
		Enqueue("ex", "rk", []byte("p"), []byte("body")), Checkout(c1, 10), Cancel(c2), Settle(c1, 1, 2, 3),
		Return(c1, 7), Discard(c2), Down(c1), NodeDown(3),
	} {
		got, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encode(), c.Encode()) {
			t.Fatalf("%+v became %+v", c, got)
		}
	}
	for _, bad := range [][]byte{nil, {2}, {1, 99}, {1, kindSettle, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 255, 255, 255, 255}} {
		if _, err := DecodeCommand(bad); err == nil {
			t.Fatalf("%v decoded", bad)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(Enqueue("ex", "rk", []byte("p"), []byte("b")).Encode())
	f.Add(Settle(c1, 1, 2).Encode())
	f.Add(Checkout(c1, 2).At(1000).Encode())
	f.Add(Delete(true, true).Encode())
	f.Add(ExpireQueue(5000).Encode())
	f.Add(Touch(7).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if _, err := DecodeCommand(c.Encode()); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		q := New(1, NoLimits, nil)
		if _, err := q.Apply(cluster.Entry{Index: 1, Data: b}); err != nil {
			t.Fatal(err)
		}
	})
}
