package vhost

// Queue stores on disk: a durable (non-exclusive) queue keeps its messages in a store on the
// log engine (queue.OpenLogStore) in <data-dir>/queues/<vhost>/<queue>/, both names escaped
// into one path element each (internal/datadir lays the directory out); every other queue
// keeps them in memory.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/queue"
)

// Stores lays out and opens the queue stores of one data directory.
type Stores struct {
	layout datadir.Layout
	opts   queue.LogStoreOptions
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex      // guards unknown
	unknown map[string]bool // store dirs that no durable queue owned at Check
}

// NewStores returns the queue stores of the data directory laid out by layout; logger nil
// discards.
func NewStores(layout datadir.Layout, opts queue.LogStoreOptions, logger *slog.Logger) *Stores {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Stores{layout: layout, opts: opts, log: logger, now: time.Now}
}

// Dir is the directory of the store of queue name in vhost.
func (s *Stores) Dir(vhost, name string) string { return s.layout.Queue(vhost, name) }

// Open gives durable (non-exclusive) queues a store on the log engine and every other queue
// a memory store; it is Config.QueueStore. A store directory that Check found owned by no
// durable queue is moved aside (datadir.MoveAside) before a queue of that name gets a store:
// its old messages are never served as the new queue's, and never deleted.
func (s *Stores) Open(vhost, name string, opts queue.Options) (queue.Store, error) {
	if !opts.Durable || opts.Exclusive {
		return queue.MemoryStore{}, nil
	}
	dir := s.Dir(vhost, name)
	s.mu.Lock()
	if s.unknown[dir] {
		moved, err := datadir.MoveAside(dir, s.now())
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		delete(s.unknown, dir)
		s.log.Warn("moved aside a queue store the topology did not describe, to declare the queue anew", "dir", dir, "now", moved)
	}
	s.mu.Unlock()
	return queue.OpenLogStore(dir, s.opts)
}

// Check looks at the queue stores before any opens, against the durable topology and
// whether its file existed (catalog.AMQPStore.Existed). It refuses a missing topology file
// in front of queue stores: they would be described by nothing (their queues' arguments,
// exchanges and bindings live only there), so they are neither guessed at nor dropped. It
// finishes the queue deletions that tombstones mark (queue.LogStore.Drop renames a store to
// <dir>.deleted before removing it), and keeps and logs the stores no durable queue owns (a
// crash between creating a new queue's store and saving the topology leaves one, empty); Open
// moves such a store aside if its name is declared again. Nothing is deleted without a
// tombstone.
func (s *Stores) Check(topo catalog.AMQPTopology, topologyExisted bool) error {
	owned := map[string]bool{}
	for _, q := range topo.Queues {
		owned[s.Dir(q.VHost, q.Name)] = true
	}
	root := s.layout.Queues()
	vhosts, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot list queue stores: %w", err)
	}
	var stores, tombs []string
	for _, vh := range vhosts {
		queues, err := os.ReadDir(filepath.Join(root, vh.Name()))
		if err != nil {
			return fmt.Errorf("cannot list queue stores: %w", err)
		}
		for _, q := range queues {
			dir := filepath.Join(root, vh.Name(), q.Name())
			switch {
			case datadir.IsTombstone(q.Name()):
				tombs = append(tombs, dir)
			case !datadir.IsMovedAside(q.Name()):
				stores = append(stores, dir)
			}
		}
	}
	if !topologyExisted && len(stores) > 0 {
		return fmt.Errorf("cannot open AMQP queues: %s is missing but %s holds %d durable queue stores (%s, ...) "+
			"that only it describes (queue arguments, exchanges, bindings); restore the file from a backup, "+
			"or move %s away to start without those queues; nothing was deleted",
			s.layout.AMQPTopology(), root, len(stores), stores[0], root)
	}
	for _, t := range tombs {
		s.log.Info("finishing an interrupted queue deletion", "dir", t)
		if err := datadir.RemoveTombstone(t); err != nil {
			return err
		}
	}
	unknown := map[string]bool{}
	for _, dir := range stores {
		if !owned[dir] {
			s.log.Warn("keeping a queue store that no durable queue of the topology owns; it is not served "+
				"(declaring its queue again moves it aside)", "dir", dir)
			unknown[dir] = true
		}
	}
	s.mu.Lock()
	s.unknown = unknown
	s.mu.Unlock()
	return nil
}
