package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPartitionNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		topic string
		p     int32
	}{{"a", 0}, {"a-1", 2}, {"x.y_z-", 9999}} {
		topic, p, ok := ParsePartitionName(PartitionName(c.topic, c.p))
		if !ok || topic != c.topic || p != c.p {
			t.Errorf("round trip of %q/%d: %q/%d %v", c.topic, c.p, topic, p, ok)
		}
	}
	for _, bad := range []string{"a", "-1", "a-", "a-01", "a-x", "a-1.deleted"} {
		if _, _, ok := ParsePartitionName(bad); ok {
			t.Errorf("%q parsed as a partition directory", bad)
		}
	}
	if topic, p, ok := ParseProducerSnapshotName("t-3.json"); !ok || topic != "t" || p != 3 {
		t.Errorf("snapshot name: %q %d %v", topic, p, ok)
	}
}

func TestEscapeNameIsOnePlainElement(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "/", "..", "a.deleted", "q/../../x", "ü"} {
		e := EscapeName(s)
		if e == "" || strings.ContainsAny(e, "./\\") || IsTombstone(e) {
			t.Errorf("EscapeName(%q) = %q", s, e)
		}
	}
}

func TestTombstoneLifecycle(t *testing.T) {
	t.Parallel()
	l := New(t.TempDir())
	dir := l.Partition("t", 0)
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != DirPerm {
		t.Fatalf("dir mode %v", fi.Mode().Perm())
	}
	if err := RemoveTombstone(dir); err == nil {
		t.Fatal("RemoveTombstone removed a directory that is not a tombstone")
	}
	tomb, err := Tombstone(dir, "id")
	if err != nil || filepath.Base(tomb) != "t-0.id.deleted" {
		t.Fatalf("Tombstone = %s, %v", tomb, err)
	}
	if err := Untombstone(tomb, dir); err != nil {
		t.Fatal(err)
	}
	if tomb, err = Tombstone(dir, "id"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTombstone(tomb); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(l.Topics()); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	moved, err := MoveAside(dir, time.Unix(1, 0))
	if err != nil || !IsMovedAside(filepath.Base(moved)) {
		t.Fatalf("MoveAside = %s, %v", moved, err)
	}
}
