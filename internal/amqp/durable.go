package amqp

// Durable topology: durable exchanges, queues and bindings are saved in the catalog's AMQP
// section (internal/catalog, amqp-topology.json) whenever one of them changes, before the
// client gets its -ok, and restored by Restore before the server accepts connections. A
// binding is durable when both its ends are (as in RabbitMQ); exclusive queues never are.
// Durable queues' messages are in their stores (Config.QueueStore), which recover themselves.

import (
	"fmt"
	"strings"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// TopologyStore persists durable topology; *catalog.AMQPStore implements it.
type TopologyStore interface {
	Save(catalog.AMQPTopology) error
}

func encodeArgs(args map[string]any) []byte {
	if len(args) == 0 {
		return nil
	}
	return wire.AppendTable(nil, args)
}

func decodeArgs(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	t, err := wire.DecodeTable(b)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// saveTopology writes every durable object of every vhost. Callers call it after a change to
// a durable object and before replying.
func (s *Server) saveTopology() error {
	if s.cfg.Topology == nil {
		return nil
	}
	s.topoMu.Lock()
	defer s.topoMu.Unlock()
	var t catalog.AMQPTopology
	for _, vh := range s.vhosts {
		durableQ := map[string]bool{}
		vh.mu.RLock()
		for name, qs := range vh.queues {
			o := qs.q.Options()
			if o.Durable && !o.Exclusive {
				durableQ[name] = true
				t.Queues = append(t.Queues, catalog.AMQPQueue{VHost: vh.name, Name: name, AutoDelete: o.AutoDelete, Args: encodeArgs(o.Args)})
			}
		}
		vh.mu.RUnlock()
		exs, bs := vh.topo.Snapshot()
		durableX := map[string]bool{}
		for _, e := range exs {
			if !e.Durable {
				continue
			}
			durableX[e.Name] = true
			if e.Name == "" || strings.HasPrefix(e.Name, "amq.") {
				continue
			}
			t.Exchanges = append(t.Exchanges, catalog.AMQPExchange{VHost: vh.name, Name: e.Name, Type: e.Type, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: encodeArgs(e.Args)})
		}
		for _, b := range bs {
			if !durableX[b.Source] || (b.Dest.Exchange && !durableX[b.Dest.Name]) || (!b.Dest.Exchange && !durableQ[b.Dest.Name]) {
				continue
			}
			t.Bindings = append(t.Bindings, catalog.AMQPBinding{VHost: vh.name, Source: b.Source, DestExchange: b.Dest.Exchange, Dest: b.Dest.Name, Key: b.Key, Args: encodeArgs(b.Args)})
		}
	}
	return s.cfg.Topology.Save(t)
}

// persist saves the topology after a change to a durable object, turning a failure into the
// channel error RabbitMQ would give (541 INTERNAL_ERROR).
func (ch *channel) persist(m wire.Method, durable bool) *amqpError {
	if !durable {
		return nil
	}
	if err := ch.c.srv.saveTopology(); err != nil {
		ch.c.log.Error("cannot save durable topology", "err", err)
		return channelErr(wire.InternalError, m, "cannot save durable topology: %v", err)
	}
	return nil
}

// Restore recreates the durable topology (and reopens durable queues' stores) saved by a
// previous run. Call it once, before Serve.
func (s *Server) Restore(t catalog.AMQPTopology) error {
	for _, e := range t.Exchanges {
		vh := s.vhosts[e.VHost]
		if vh == nil {
			continue
		}
		args, err := decodeArgs(e.Args)
		if err != nil {
			return fmt.Errorf("cannot restore exchange %q: %w", e.Name, err)
		}
		if _, _, err := vh.topo.Declare(route.Exchange{Name: e.Name, Type: e.Type, Durable: true, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: args}); err != nil {
			return fmt.Errorf("cannot restore exchange %q: %w", e.Name, err)
		}
	}
	for _, q := range t.Queues {
		vh := s.vhosts[q.VHost]
		if vh == nil {
			continue
		}
		args, err := decodeArgs(q.Args)
		if err != nil {
			return fmt.Errorf("cannot restore queue %q: %w", q.Name, err)
		}
		opts := queue.Options{Durable: true, AutoDelete: q.AutoDelete, Args: args}
		if isStreamArgs(args) {
			part, err := s.attachStream(q.Name, args)
			if err != nil {
				return fmt.Errorf("cannot restore stream queue %q: %w", q.Name, err)
			}
			vh.mu.Lock()
			vh.queues[q.Name] = &queueState{q: queue.New(q.Name, opts), stream: part}
			vh.mu.Unlock()
			continue
		}
		var created *queueState
		opts = vh.queueOptions(q.Name, opts, &created)
		if open := s.cfg.QueueStore; open != nil {
			store, err := open(vh.name, q.Name, opts)
			if err != nil {
				return fmt.Errorf("cannot restore queue %q: %w", q.Name, err)
			}
			opts.Store = store
		}
		created = &queueState{q: queue.New(q.Name, opts), quorum: queueType(opts.Args) == queueTypeQuorum}
		vh.mu.Lock()
		vh.queues[q.Name] = created
		vh.mu.Unlock()
	}
	for _, b := range t.Bindings {
		vh := s.vhosts[b.VHost]
		if vh == nil {
			continue
		}
		args, err := decodeArgs(b.Args)
		if err != nil {
			return fmt.Errorf("cannot restore binding from %q: %w", b.Source, err)
		}
		if err := vh.topo.Bind(route.Binding{Source: b.Source, Dest: route.Dest{Exchange: b.DestExchange, Name: b.Dest}, Key: b.Key, Args: args}); err != nil {
			return fmt.Errorf("cannot restore binding from %q: %w", b.Source, err)
		}
	}
	return nil
}

// closeQueues closes every queue's store at shutdown, keeping durable data.
func (s *Server) closeQueues() error {
	var first error
	for _, vh := range s.vhosts {
		vh.mu.RLock()
		qs := make([]*queueState, 0, len(vh.queues))
		for _, q := range vh.queues {
			qs = append(qs, q)
		}
		vh.mu.RUnlock()
		for _, q := range qs {
			if err := q.q.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
