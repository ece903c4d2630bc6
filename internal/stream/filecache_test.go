package stream

import (
	"bytes"
	"testing"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
)

// TestManyPartitionsShareASmallFileCache: a topic of far more partitions than the file cache
// holds keeps every partition's data, with the cache at its bound once nothing is in use,
// across a restart that shares the same cache.
func TestManyPartitionsShareASmallFileCache(t *testing.T) {
	t.Parallel()
	const partitions, bound = 40, 4
	dir := t.TempDir()
	cache := log.NewFileCache(bound)
	open := func() *Manager {
		cat, err := catalog.Open(datadir.New(dir).Catalog())
		if err != nil {
			t.Fatal(err)
		}
		m, err := Open(Config{Layout: datadir.New(dir), SyncPolicy: log.SyncNever, FileCache: cache}, cat)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := open()
	tp, err := m.CreateTopic("wide", partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]byte, partitions)
	for round := range 2 {
		for i, p := range tp.Partitions() {
			b := batch(-1, -1, -1, 1, 40+i+round)
			if _, err := p.Append(b); err != nil {
				t.Fatalf("partition %d: %v", i, err)
			}
			want[i] = append(want[i], b[12:]...) // the log assigns the base offset
		}
	}
	check := func(m *Manager) {
		t.Helper()
		tp, _ := m.Topic("wide")
		for i, p := range tp.Partitions() {
			r, err := p.Read(0, 1<<20)
			if err != nil {
				t.Fatalf("partition %d: %v", i, err)
			}
			got, err := r.AppendTo(nil)
			r.Release()
			if err != nil {
				t.Fatal(err)
			}
			var rest []byte // each batch without its base offset
			for len(got) >= 12 {
				n := 12 + int(uint32(got[8])<<24|uint32(got[9])<<16|uint32(got[10])<<8|uint32(got[11]))
				rest = append(rest, got[12:n]...)
				got = got[n:]
			}
			if !bytes.Equal(rest, want[i]) {
				t.Fatalf("partition %d: data differs", i)
			}
		}
		if n, _, evicted := cache.Stats(); n > bound || evicted == 0 {
			t.Fatalf("%d files open (bound %d), %d closed to stay under it", n, bound, evicted)
		}
	}
	check(m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := cache.Stats(); n != 0 {
		t.Fatalf("%d files open after the manager closed", n)
	}
	m = open()
	defer m.Close()
	check(m)
}
