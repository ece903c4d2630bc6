package vhost

// Queue stores on disk: a durable (non-exclusive) queue keeps its messages in a store on the
// log engine (queue.OpenLogStore) in <root>/<vhost>/<queue>/, both names escaped into one path
// element each (escapeName); every other queue keeps them in memory.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/queue"
)

// Stores lays out and opens the queue stores under one root directory.
type Stores struct {
	Root    string // <data-dir>/queues
	Options queue.LogStoreOptions
	Logger  *slog.Logger // nil discards
}

// Dir is the directory of the store of queue name in vhost.
func (s Stores) Dir(vhost, name string) string {
	return filepath.Join(s.Root, escapeName(vhost), escapeName(name))
}

// Open gives durable (non-exclusive) queues a store on the log engine and every other queue
// a memory store; it is Config.QueueStore.
func (s Stores) Open(vhost, name string, opts queue.Options) (queue.Store, error) {
	if !opts.Durable || opts.Exclusive {
		return queue.MemoryStore{}, nil
	}
	return queue.OpenLogStore(s.Dir(vhost, name), s.Options)
}

// RemoveOrphans deletes the queue stores that no durable queue of the topology owns. A crash
// between creating a new queue's store and saving the topology leaves one behind (and so does
// a crash in the middle of deleting a queue); left alone, its old messages would reappear in
// the next queue declared under that name.
func (s Stores) RemoveOrphans(topo catalog.AMQPTopology) error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	owned := map[string]bool{}
	for _, q := range topo.Queues {
		owned[filepath.Join(escapeName(q.VHost), escapeName(q.Name))] = true
	}
	vhosts, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot list queue stores: %w", err)
	}
	for _, vh := range vhosts {
		queues, err := os.ReadDir(filepath.Join(s.Root, vh.Name()))
		if err != nil {
			return fmt.Errorf("cannot list queue stores: %w", err)
		}
		for _, q := range queues {
			rel := filepath.Join(vh.Name(), q.Name())
			if owned[rel] {
				continue
			}
			log.Warn("removing the store of a queue that is not in the topology (left by a crash)", "dir", filepath.Join(s.Root, rel))
			if err := os.RemoveAll(filepath.Join(s.Root, rel)); err != nil {
				return fmt.Errorf("cannot remove orphan queue store: %w", err)
			}
		}
	}
	return nil
}

// escapeName turns any AMQP name into one safe path element: bytes other than ASCII letters,
// digits, '-' and '_' become %XX.
func escapeName(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			sb.WriteByte(c)
			continue
		}
		fmt.Fprintf(&sb, "%%%02X", c)
	}
	if sb.Len() == 0 {
		return "%"
	}
	return sb.String()
}
