package vhost

// Durable topology: durable exchanges, queues and bindings are saved in the catalog's AMQP
// section (internal/catalog, amqp-topology.json) whenever one of them changes, before the
// client gets its -ok, and restored by Restore before a front end serves anyone. A binding is
// durable when both its ends are (as in RabbitMQ); exclusive queues never are. Durable queues'
// messages are in their stores (Config.QueueStore), which recover themselves. Arguments are
// kept as field tables (Codec).

import (
	"fmt"
	"strings"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// TopologyStore persists durable topology; *catalog.AMQPStore implements it.
type TopologyStore interface {
	Save(catalog.AMQPTopology) error
}

func (h *Hosts) encodeArgs(args map[string]any) []byte {
	if len(args) == 0 {
		return nil
	}
	return h.cfg.Codec.AppendTable(nil, args)
}

func (h *Hosts) decodeArgs(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return h.cfg.Codec.DecodeTable(b)
}

// Save writes every durable object of every vhost. The domain calls it after a change to a
// durable object and before the change is reported done.
func (h *Hosts) Save() error {
	if h.cfg.Topology == nil {
		return nil
	}
	h.topoMu.Lock()
	defer h.topoMu.Unlock()
	var t catalog.AMQPTopology
	for _, vh := range h.list() {
		durableQ := map[string]bool{}
		vh.mu.RLock()
		for name, qs := range vh.queues {
			o := qs.Options()
			if o.Durable && !o.Exclusive {
				durableQ[name] = true // a replicated queue's bindings are kept here too
				if qs.Replicated {
					continue // the cluster keeps its declaration
				}
				t.Queues = append(t.Queues, catalog.AMQPQueue{VHost: vh.name, Name: name, AutoDelete: o.AutoDelete, Args: h.encodeArgs(o.Args)})
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
			t.Exchanges = append(t.Exchanges, catalog.AMQPExchange{VHost: vh.name, Name: e.Name, Type: e.Type, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: h.encodeArgs(e.Args)})
		}
		for _, b := range bs {
			if !durableX[b.Source] || (b.Dest.Exchange && !durableX[b.Dest.Name]) || (!b.Dest.Exchange && !durableQ[b.Dest.Name]) {
				continue
			}
			t.Bindings = append(t.Bindings, catalog.AMQPBinding{VHost: vh.name, Source: b.Source, DestExchange: b.Dest.Exchange, Dest: b.Dest.Name, Key: b.Key, Args: h.encodeArgs(b.Args)})
		}
	}
	return h.cfg.Topology.Save(t)
}

// persist saves the topology after a change to a durable object, turning a failure into the
// refusal RabbitMQ would give (541 INTERNAL_ERROR).
func (h *Hosts) persist(durable bool) error {
	if !durable {
		return nil
	}
	if err := h.Save(); err != nil {
		h.log.Error("cannot save durable topology", "err", err)
		return refuse(ErrInternal, "cannot save durable topology: %v", err)
	}
	return nil
}

// Restore recreates the durable topology (and reopens durable queues' stores) saved by a
// previous run. Call it once, before serving.
func (h *Hosts) Restore(t catalog.AMQPTopology) error {
	for _, e := range t.Exchanges {
		vh := h.Get(e.VHost)
		if vh == nil {
			continue
		}
		args, err := h.decodeArgs(e.Args)
		if err != nil {
			return fmt.Errorf("cannot restore exchange %q: %w", e.Name, err)
		}
		if _, _, err := vh.topo.Declare(route.Exchange{Name: e.Name, Type: e.Type, Durable: true, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: args}); err != nil {
			return fmt.Errorf("cannot restore exchange %q: %w", e.Name, err)
		}
	}
	for _, q := range t.Queues {
		vh := h.Get(q.VHost)
		if vh == nil {
			continue
		}
		args, err := h.decodeArgs(q.Args)
		if err != nil {
			return fmt.Errorf("cannot restore queue %q: %w", q.Name, err)
		}
		opts := queue.Options{Durable: true, AutoDelete: q.AutoDelete, Args: args}
		if isStreamArgs(args) {
			part, err := h.attachStream(q.Name, args)
			if err != nil {
				return fmt.Errorf("cannot restore stream queue %q: %w", q.Name, err)
			}
			vh.mu.Lock()
			vh.queues[q.Name] = newStreamQueue(q.Name, args, part)
			vh.mu.Unlock()
			continue
		}
		created, err := vh.newQueue(q.Name, opts, nil)
		if err != nil {
			return fmt.Errorf("cannot restore queue %q: %w", q.Name, err)
		}
		vh.mu.Lock()
		vh.queues[q.Name] = created
		vh.mu.Unlock()
	}
	for _, b := range t.Bindings {
		vh := h.Get(b.VHost)
		if vh == nil {
			continue
		}
		args, err := h.decodeArgs(b.Args)
		if err != nil {
			return fmt.Errorf("cannot restore binding from %q: %w", b.Source, err)
		}
		if err := vh.topo.Bind(route.Binding{Source: b.Source, Dest: route.Dest{Exchange: b.DestExchange, Name: b.Dest}, Key: b.Key, Args: args}); err != nil {
			return fmt.Errorf("cannot restore binding from %q: %w", b.Source, err)
		}
	}
	return nil
}
