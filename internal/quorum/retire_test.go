package quorum

import (
	"bytes"
	"slices"
	"testing"

	"github.com/yardmq/yard/internal/cluster"
)

// TestDeleteConditions: a delete with if-unused is refused while a consumer (of any node) is
// attached, with if-empty while messages are ready, as the replicated state says at the
// delete's place in the log; a delete that passes drops the ready messages, and the deleted
// queue accepts and drops publishes, delivers nothing, and answers a second delete.
func TestDeleteConditions(t *testing.T) {
	q1, q2 := New(1, NoLimits, &recorder{}), New(2, NoLimits, &recorder{})
	l := &log{t: t, qs: []*Queue{q1, q2}}
	l.apply(Enqueue("", "q", nil, []byte("a")))
	l.apply(Enqueue("", "q", nil, []byte("b")))
	l.apply(Checkout(c2, 1)) // holds a
	if res := l.apply(Delete(true, false)).(DeleteResult); !res.InUse || res.Deleted {
		t.Fatalf("if-unused with a consumer: %+v", res)
	}
	if res := l.apply(Delete(false, true)).(DeleteResult); !res.NotEmpty || res.Deleted {
		t.Fatalf("if-empty with a ready message: %+v", res)
	}
	l.apply(Cancel(c2))
	if res := l.apply(Delete(true, false)).(DeleteResult); !res.Deleted || res.Ready != 1 {
		t.Fatalf("if-unused without consumers: %+v", res)
	}
	if !q1.Deleted() || !q2.Deleted() {
		t.Fatal("not deleted on every replica")
	}
	if res := l.apply(Enqueue("", "q", nil, []byte("late"))).(EnqueueResult); !res.Accepted {
		t.Fatalf("publish to a deleted queue: %+v", res)
	}
	l.apply(Checkout(c1, 0))
	if ready, _, _ := q1.Counts(); ready != 0 {
		t.Fatalf("a deleted queue holds %d ready", ready)
	}
	if res := l.apply(Delete(false, false)).(DeleteResult); !res.Deleted || res.Ready != 0 {
		t.Fatalf("second delete: %+v", res)
	}
	a, _ := q1.Snapshot()
	r := New(3, NoLimits, nil)
	if err := r.Restore(a); err != nil || !r.Deleted() {
		t.Fatalf("restored: deleted %v, %v", r.Deleted(), err)
	}
}

// TestQueueExpiry: with x-expires, ExpireQueue deletes the queue only once it has had no
// consumer and no use (checkout, get, touch, the last consumer leaving) for that long at the
// command's clock; publishes do not count as uses. Every replica agrees whatever its own
// clock, and a snapshot keeps the last use.
func TestQueueExpiry(t *testing.T) {
	cfg := NoLimits
	cfg.Expires = 1000
	q1, q2 := New(1, cfg, &recorder{}), New(2, cfg, &recorder{})
	l := &log{t: t, qs: []*Queue{q1, q2}}
	l.apply(NodeDown(1).At(10_000)) // the queue's first clocked command: its life starts
	if at := q1.ExpiresAt(); at != 11_000 {
		t.Fatalf("expires at %d, want 11000", at)
	}
	l.apply(Enqueue("", "q", nil, []byte("m")).WithClock(10_900, -1)) // not a use
	if res := l.apply(ExpireQueue(10_999)).(DeleteResult); res.Deleted {
		t.Fatal("expired before x-expires")
	}
	l.apply(Get(c1, true).At(10_500)) // a use, stamped earlier than the last: kept at the latest
	l.apply(Touch(10_800))            // a redeclaration
	if res := l.apply(ExpireQueue(11_000)).(DeleteResult); res.Deleted {
		t.Fatal("expired although used at 10800")
	}
	l.apply(Checkout(c2, 0).At(12_000))
	if at := q1.ExpiresAt(); at != 0 {
		t.Fatalf("a queue with a consumer expires at %d", at)
	}
	if res := l.apply(ExpireQueue(20_000)).(DeleteResult); res.Deleted {
		t.Fatal("expired with a consumer attached")
	}
	l.apply(Cancel(c2).At(30_000)) // unused from now on
	snap, _ := q1.Snapshot()
	if res := l.apply(ExpireQueue(30_999)).(DeleteResult); res.Deleted {
		t.Fatal("expired before x-expires after the last consumer left")
	}
	if res := l.apply(ExpireQueue(31_000)).(DeleteResult); !res.Deleted {
		t.Fatal("not expired after x-expires unused")
	}
	if !q2.Deleted() {
		t.Fatal("replica 2 disagrees")
	}
	r := New(3, cfg, nil)
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if at := r.ExpiresAt(); at != 31_000 {
		t.Fatalf("restored queue expires at %d", at)
	}
	// without x-expires a queue never expires
	q := New(1, NoLimits, nil)
	l = &log{t: t, qs: []*Queue{q}}
	l.apply(NodeDown(1).At(1))
	if res := l.apply(ExpireQueue(1 << 50)).(DeleteResult); res.Deleted {
		t.Fatal("a queue without x-expires expired")
	}
}

func TestCommandRoundTripClocked(t *testing.T) {
	for _, c := range []Command{
		Checkout(c1, 3).At(5), Cancel(c2).At(6), Down(c1).At(7), NodeDown(2).At(8), Get(c1, true).At(9),
		Touch(10), Delete(true, false), Delete(false, true), ExpireQueue(11),
	} {
		got, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encode(), c.Encode()) || got.now != c.now || got.ifUnused != c.ifUnused || got.ifEmpty != c.ifEmpty {
			t.Fatalf("%+v became %+v", c, got)
		}
	}
}

// TestDeclarationsRestoreDetaches: a snapshot restored over what a node had attached
// (a node behind) detaches the queues it no longer holds (with their index, so their group
// goes) and the bindings, and a queue declared again since is detached and attached anew.
func TestDeclarationsRestoreDetaches(t *testing.T) {
	var attached []Declaration
	s := NewDeclarations(func(d Declaration) error { attached = append(attached, d); return nil })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	apply := func(s *Declarations, i uint64, d Declaration) {
		t.Helper()
		if _, err := s.Apply(cluster.Entry{Index: i, Data: EncodeDeclare(d)}); err != nil {
			t.Fatal(err)
		}
	}
	apply(s, 3, Declaration{VHost: "/", Name: "gone"})
	apply(s, 4, Declaration{VHost: "/", Name: "again"})
	apply(s, 5, Declaration{VHost: "/", Name: "kept"})
	apply(s, 6, Declaration{Kind: KindBind, VHost: "/", Name: "x\x00kept\x00k\x00"})

	ahead := NewDeclarations(func(Declaration) error { return nil })
	ahead.Start()
	apply(ahead, 3, Declaration{VHost: "/", Name: "gone"})
	apply(ahead, 4, Declaration{VHost: "/", Name: "again"})
	apply(ahead, 5, Declaration{VHost: "/", Name: "kept"})
	apply(ahead, 6, Declaration{Kind: KindBind, VHost: "/", Name: "x\x00kept\x00k\x00"})
	apply(ahead, 7, Declaration{Kind: KindDelete, VHost: "/", Name: "gone"})
	apply(ahead, 8, Declaration{Kind: KindDelete, VHost: "/", Name: "again"})
	apply(ahead, 9, Declaration{VHost: "/", Name: "again"})
	apply(ahead, 10, Declaration{Kind: KindUnbind, VHost: "/", Name: "x\x00kept\x00k\x00"})
	snap, err := ahead.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	attached = nil
	if err := s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range attached {
		got = append(got, d.Kind+":"+d.Name+":"+string(rune('0'+d.Index)))
	}
	want := []string{"delete:gone:3", "delete:again:4", "unbind:x\x00kept\x00k\x00:0", ":kept:5", ":again:9"}
	if len(got) != len(want) {
		t.Fatalf("attached %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("attached %q, want %q", got, want)
		}
	}
}

// TestDeclarationsStart: before Start (the group being created and recovered under the Raft
// host's lock), a restored snapshot and applied entries attach nothing but deletions; Start
// attaches what they left, in order.
func TestDeclarationsStart(t *testing.T) {
	src := NewDeclarations(func(Declaration) error { return nil })
	src.Start()
	for i, d := range []Declaration{{VHost: "/", Name: "a"}, {VHost: "/", Name: "b"}} {
		if _, err := src.Apply(cluster.Entry{Index: uint64(i + 1), Data: EncodeDeclare(d)}); err != nil {
			t.Fatal(err)
		}
	}
	snap, _ := src.Snapshot()
	var attached []string
	s := NewDeclarations(func(d Declaration) error { attached = append(attached, d.Kind+":"+d.Name); return nil })
	if err := s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	for i, d := range []Declaration{{Kind: KindDelete, VHost: "/", Name: "a"}, {VHost: "/", Name: "c"}} {
		if _, err := s.Apply(cluster.Entry{Index: uint64(i + 3), Data: EncodeDeclare(d)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(attached) != 1 || attached[0] != "delete:a" {
		t.Fatalf("attached before Start: %q", attached)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"delete:a", ":b", ":c"}; !slices.Equal(attached, want) {
		t.Fatalf("attached %q, want %q", attached, want)
	}
}
