package quorum

import (
	"testing"

	"github.com/yardmq/yard/internal/cluster"
)

// TestDeclarationsDelete: a delete removes the queue's declaration and the bindings to it,
// attaches the deletion with the queue's declaring index, and the queue declared again gets
// a new index; a delete of an unknown queue changes nothing.
func TestDeclarationsDelete(t *testing.T) {
	var attached []Declaration
	s := NewDeclarations(func(d Declaration) error { attached = append(attached, d); return nil })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	apply := func(i uint64, d Declaration) {
		t.Helper()
		if _, err := s.Apply(cluster.Entry{Index: i, Data: EncodeDeclare(d)}); err != nil {
			t.Fatal(err)
		}
	}
	apply(3, Declaration{VHost: "/", Name: "q"})
	apply(4, Declaration{Kind: KindBind, VHost: "/", Name: "x\x00q\x00k\x00"})
	apply(5, Declaration{Kind: KindBind, VHost: "/", Name: "x\x00other\x00k\x00"})
	apply(6, Declaration{Kind: KindDelete, VHost: "/", Name: "q"})
	if got := attached[len(attached)-1]; got.Kind != KindDelete || got.Index != 3 {
		t.Fatalf("deletion attached as %+v, want the index 3", got)
	}
	if l := s.List(); len(l) != 1 || BindingQueue(l[0].Name) != "other" {
		t.Fatalf("after delete: %+v", l)
	}
	n := len(attached)
	apply(7, Declaration{Kind: KindDelete, VHost: "/", Name: "q"})
	if len(attached) != n {
		t.Fatal("deleting an unknown queue attached something")
	}
	apply(8, Declaration{VHost: "/", Name: "q"})
	if got := attached[len(attached)-1]; got.Kind != KindQueue || got.Index != 8 {
		t.Fatalf("redeclaration attached as %+v, want the index 8", got)
	}
	// a declaration recorded before indexes existed keeps index 0 (its old group id)
	if _, err := s.Apply(cluster.Entry{Index: 9, Data: append([]byte{cmdVersion}, `{"vhost":"/","name":"old","args":null}`...)}); err != nil {
		t.Fatal(err)
	}
	if got := attached[len(attached)-1]; got.Name != "old" || got.Index != 0 {
		t.Fatalf("old declaration attached as %+v", got)
	}
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	r := NewDeclarations(func(Declaration) error { return nil })
	if err := r.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if l := r.List(); len(l) != 3 || l[1].Index != 8 || l[2].Index != 0 {
		t.Fatalf("restored %+v", l)
	}
}
