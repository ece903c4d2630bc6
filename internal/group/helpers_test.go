package group

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// openTopicManager opens a topic manager over the data directory root (its partitions' logs
// on fs; nil = the OS file system); close (also run at the test's end) closes it once.
func openTopicManager(t testing.TB, root string, fs log.FS) (m *stream.Manager, close func()) {
	t.Helper()
	cat, err := catalog.Open(filepath.Join(root, "catalog.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err = stream.Open(stream.Config{Layout: datadir.New(root), FS: fs}, cat)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	close = func() { once.Do(func() { m.Close() }) }
	t.Cleanup(close)
	return m, close
}

// openOffsetsTopic is the n partitions of __consumer_offsets in a topic manager over root.
func openOffsetsTopic(t testing.TB, root string, fs log.FS, n int32) []OffsetsPartition {
	t.Helper()
	m, _ := openTopicManager(t, root, fs)
	parts, err := StreamOffsetsPartitions(m, n)
	if err != nil {
		t.Fatal(err)
	}
	return parts
}
