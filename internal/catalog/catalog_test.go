package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestUpdatePersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := Open(filepath.Join(dir, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := NewUUID()
	err = c.Update(func(s *State) error {
		s.Topics["orders"] = Topic{Name: "orders", ID: id, Partitions: 6, Configs: map[string]string{"retention.ms": "1000"}}
		s.BrokerConfigs = map[string]string{"log.retention.ms": "5"}
		s.NextProducerID = 1001
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Open(filepath.Join(dir, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c2.Topic("orders")
	if !ok || got.ID != id || got.Partitions != 6 || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("reopened topic = %+v, %v", got, ok)
	}
	s := c2.Snapshot()
	if s.BrokerConfigs["log.retention.ms"] != "5" || s.NextProducerID != 1001 {
		t.Fatalf("reopened state = %+v", s)
	}
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, _ := Open(filepath.Join(dir, "catalog.json"))
	sentinel := errors.New("no")
	err := c.Update(func(s *State) error {
		s.Topics["x"] = Topic{Name: "x", Partitions: 1}
		return sentinel
	})
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := c.Topic("x"); ok {
		t.Fatal("topic visible after failed update")
	}
	if _, err := os.Stat(filepath.Join(dir, "catalog.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("catalog file written by failed update: %v", err)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	t.Parallel()
	c, _ := Open(filepath.Join(t.TempDir(), "catalog.json"))
	_ = c.Update(func(s *State) error {
		s.Topics["a"] = Topic{Name: "a", Partitions: 1, Configs: map[string]string{"k": "v"}}
		return nil
	})
	s := c.Snapshot()
	s.Topics["a"].Configs["k"] = "changed"
	if got, _ := c.Topic("a"); got.Configs["k"] != "v" {
		t.Fatal("mutating a snapshot changed the catalog")
	}
}

func TestCorruptFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, _ := Open(filepath.Join(dir, "catalog.json"))
	_ = c.Update(func(s *State) error {
		s.Topics["a"] = Topic{Name: "a", Partitions: 3}
		return nil
	})
	name := filepath.Join(dir, "catalog.json")
	data, _ := os.ReadFile(name)
	// Flip the partition count without fixing the checksum.
	bad := []byte(string(data))
	for i := range bad {
		if bad[i] == '3' {
			bad[i] = '4'
			break
		}
	}
	if err := os.WriteFile(name, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(dir, "catalog.json")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of damaged catalog: err = %v, want ErrCorrupt", err)
	}
}

func TestUUID(t *testing.T) {
	t.Parallel()
	u := NewUUID()
	if u.IsZero() || u[6]>>4 != 4 || u[8]>>6 != 2 {
		t.Fatalf("not a v4 UUID: %s", u)
	}
	p, err := ParseUUID(u.String())
	if err != nil || p != u {
		t.Fatalf("round trip %s -> %s, %v", u, p, err)
	}
	if _, err := ParseUUID("not-a-uuid"); err == nil {
		t.Fatal("parsed garbage")
	}
}

// FuzzDecode: arbitrary bytes never panic, and whatever decodes re-encodes to a state that
// decodes the same.
func FuzzDecode(f *testing.F) {
	s := State{Topics: map[string]Topic{"t": {Name: "t", ID: NewUUID(), Partitions: 2}}, NextProducerID: 7}
	good, _ := Encode(&s)
	f.Add(good)
	f.Add([]byte(`{"format":1,"crc32c":0,"state":{}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Encode(&st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded catalog does not decode: %v", err)
		}
		if len(st2.Topics) != len(st.Topics) || st2.NextProducerID != st.NextProducerID {
			t.Fatal("round trip changed the state")
		}
	})
}

func TestExistedAndFilePermissions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	c, err := Open(path)
	if err != nil || c.Existed() {
		t.Fatalf("Open of a missing catalog: existed=%v err=%v", c != nil && c.Existed(), err)
	}
	if err := c.Update(func(s *State) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("catalog file mode = %v (%v), want 0600", fi.Mode(), err)
	}
	c, err = Open(path)
	if err != nil || !c.Existed() {
		t.Fatalf("Open of a written catalog: existed=%v err=%v", c.Existed(), err)
	}
	s, _, err := OpenAMQP(filepath.Join(t.TempDir(), "amqp-topology.json"))
	if err != nil || s.Existed() {
		t.Fatalf("OpenAMQP of a missing file: existed=%v err=%v", s.Existed(), err)
	}
}
