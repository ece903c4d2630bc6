// Package route is yard's exchange routing: the exchanges of one virtual host, the bindings
// from exchanges to queues and to other exchanges, and the matching rules of the four exchange
// types (direct, fanout, topic with '*' and '#', headers with x-match all/any), alternate
// exchanges (the alternate-exchange argument) and extra routing keys (CC and BCC).
//
// A Topology is guarded by one RWMutex: publishes take the read lock, declarations, bindings
// and deletions the write lock. Queues are outside this package: a binding's destination is a
// queue or exchange name, and Route returns queue names that the caller resolves.
package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Exchange types.
const (
	Direct  = "direct"
	Fanout  = "fanout"
	Topic   = "topic"
	Headers = "headers"
)

// AlternateExchange is the exchange argument naming where messages the exchange cannot route
// go (RabbitMQ's alternate exchanges).
const AlternateExchange = "alternate-exchange"

// Errors.
var (
	ErrNotFound    = errors.New("exchange not found")
	ErrInUse       = errors.New("exchange in use")
	ErrUnknownType = errors.New("unknown exchange type")
)

// Exchange describes one exchange. Args are kept for equivalence checks on redeclaration.
type Exchange struct {
	Name       string
	Type       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       map[string]any

	bindings []*Binding
	direct   map[string][]*Binding // direct exchanges index bindings by key
}

// Dest is where a binding points: a queue or another exchange.
type Dest struct {
	Exchange bool // false: a queue
	Name     string
}

// Binding routes messages from Source to Dest when Key (and, for headers exchanges, Args) match.
type Binding struct {
	Source string
	Dest   Dest
	Key    string
	Args   map[string]any

	words []string // topic keys split on '.'
}

// Topology holds the exchanges and bindings of one virtual host.
type Topology struct {
	mu        sync.RWMutex // guards exchanges and every exchange's bindings
	exchanges map[string]*Exchange
}

// ValidType reports whether typ is an exchange type yard implements.
func ValidType(typ string) bool {
	switch typ {
	case Direct, Fanout, Topic, Headers:
		return true
	}
	return false
}

// NewTopology returns a topology with the exchanges every AMQP virtual host has: the default
// exchange "" and amq.direct, amq.fanout, amq.topic, amq.headers and amq.match.
func NewTopology() *Topology {
	t := &Topology{exchanges: map[string]*Exchange{}}
	for _, e := range []Exchange{
		{Name: "", Type: Direct, Durable: true},
		{Name: "amq.direct", Type: Direct, Durable: true},
		{Name: "amq.fanout", Type: Fanout, Durable: true},
		{Name: "amq.topic", Type: Topic, Durable: true},
		{Name: "amq.headers", Type: Headers, Durable: true},
		{Name: "amq.match", Type: Headers, Durable: true},
	} {
		e := e
		t.exchanges[e.Name] = &e
	}
	return t
}

// Lookup returns a copy of the exchange's description (without bindings).
func (t *Topology) Lookup(name string) (Exchange, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.exchanges[name]
	if !ok {
		return Exchange{}, false
	}
	return Exchange{Name: e.Name, Type: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: e.Args}, true
}

// Declare creates the exchange unless one of that name exists; it returns the existing or new
// description and whether it created it. Equivalence is the caller's business.
func (t *Topology) Declare(e Exchange) (Exchange, bool, error) {
	if !ValidType(e.Type) {
		return Exchange{}, false, fmt.Errorf("cannot declare exchange %q of type %q: %w", e.Name, e.Type, ErrUnknownType)
	}
	t.mu.Lock()
	if old, ok := t.exchanges[e.Name]; ok {
		t.mu.Unlock()
		ex, _ := t.Lookup(old.Name)
		return ex, false, nil
	}
	ne := e
	ne.bindings, ne.direct = nil, nil
	t.exchanges[e.Name] = &ne
	t.mu.Unlock()
	return e, true, nil
}

// Delete removes an exchange and every binding from or to it. With ifUnused it fails with
// ErrInUse while the exchange is the source of a binding.
func (t *Topology) Delete(name string, ifUnused bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.exchanges[name]
	if !ok {
		return fmt.Errorf("cannot delete exchange %q: %w", name, ErrNotFound)
	}
	if ifUnused && len(e.bindings) > 0 {
		return fmt.Errorf("cannot delete exchange %q: %w", name, ErrInUse)
	}
	delete(t.exchanges, name)
	t.removeDestLocked(Dest{Exchange: true, Name: name})
	return nil
}

// Bind adds a binding (idempotent). The source exchange must exist; a destination exchange
// must exist too; a destination queue is checked by the caller.
func (t *Topology) Bind(b Binding) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	src, ok := t.exchanges[b.Source]
	if !ok {
		return fmt.Errorf("cannot bind from exchange %q: %w", b.Source, ErrNotFound)
	}
	if b.Dest.Exchange {
		if _, ok := t.exchanges[b.Dest.Name]; !ok {
			return fmt.Errorf("cannot bind to exchange %q: %w", b.Dest.Name, ErrNotFound)
		}
	}
	for _, old := range src.bindings {
		if sameBinding(old, &b) {
			return nil
		}
	}
	nb := b
	nb.words = strings.Split(b.Key, ".")
	src.bindings = append(src.bindings, &nb)
	if src.Type == Direct {
		if src.direct == nil {
			src.direct = map[string][]*Binding{}
		}
		src.direct[b.Key] = append(src.direct[b.Key], &nb)
	}
	return nil
}

// Unbind removes a binding; removing one that does not exist is not an error, as in RabbitMQ.
// An auto-delete source exchange that loses its last binding is deleted.
func (t *Topology) Unbind(b Binding) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	src, ok := t.exchanges[b.Source]
	if !ok {
		return fmt.Errorf("cannot unbind from exchange %q: %w", b.Source, ErrNotFound)
	}
	t.removeLocked(src, func(old *Binding) bool { return sameBinding(old, &b) })
	return nil
}

// RemoveQueue removes every binding to a deleted queue.
func (t *Topology) RemoveQueue(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeDestLocked(Dest{Name: name})
}

// HasBindings reports whether a queue or exchange is the destination of any binding.
func (t *Topology) HasBindings(d Dest) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, e := range t.exchanges {
		for _, b := range e.bindings {
			if b.Dest == d {
				return true
			}
		}
	}
	return false
}

func (t *Topology) removeDestLocked(d Dest) {
	for _, e := range t.exchanges {
		t.removeLocked(e, func(b *Binding) bool { return b.Dest == d })
	}
}

// removeLocked drops the bindings of e that match drop, and e itself if it is auto-delete and
// has lost its last binding.
func (t *Topology) removeLocked(e *Exchange, drop func(*Binding) bool) {
	kept := e.bindings[:0]
	removed := false
	for _, b := range e.bindings {
		if drop(b) {
			removed = true
			if e.direct != nil {
				e.direct[b.Key] = without(e.direct[b.Key], b)
				if len(e.direct[b.Key]) == 0 {
					delete(e.direct, b.Key)
				}
			}
			continue
		}
		kept = append(kept, b)
	}
	clear(e.bindings[len(kept):])
	e.bindings = kept
	if removed && e.AutoDelete && len(e.bindings) == 0 {
		delete(t.exchanges, e.Name)
		t.removeDestLocked(Dest{Exchange: true, Name: e.Name})
	}
}

func without(bs []*Binding, x *Binding) []*Binding {
	out := bs[:0]
	for _, b := range bs {
		if b != x {
			out = append(out, b)
		}
	}
	return out
}

func sameBinding(a, b *Binding) bool {
	return a.Source == b.Source && a.Dest == b.Dest && a.Key == b.Key && argsEqual(a.Args, b.Args)
}

// HeaderSource gives the headers of the message being routed. Route asks at most once, only
// if a headers exchange is on the path, so that callers decode message properties only when
// needed. It is an interface, not a func, so that the publish path can pass a value it
// already has instead of allocating a closure per message.
type HeaderSource interface {
	Headers() map[string]any
}

// HeaderMap is a HeaderSource for headers already decoded.
type HeaderMap map[string]any

// Headers implements HeaderSource.
func (h HeaderMap) Headers() map[string]any { return h }

// Route appends to dst the names of the queues a message published to exchange with key and
// headers reaches, each once, following exchange-to-exchange bindings and alternate
// exchanges. headers may be nil. The default exchange routes to the queue named by the key
// (the caller checks that it exists).
func (t *Topology) Route(exchange, key string, headers HeaderSource, dst []string) ([]string, error) {
	return t.RouteKeys(exchange, key, nil, headers, dst)
}

// RouteKeys is Route for a message with extra routing keys (RabbitMQ's sender-selected
// distribution, the CC and BCC headers): a binding matches if it matches any of the keys.
// An exchange none of whose bindings match hands the message to its alternate exchange
// (argument alternate-exchange), if that exists, and so on; no exchange is visited twice.
func (t *Topology) RouteKeys(exchange, key string, extra []string, headers HeaderSource, dst []string) ([]string, error) {
	if exchange == "" {
		start := len(dst)
		dst = append(dst, key)
		for _, k := range extra {
			dst = appendOnce(dst, start, k)
		}
		return dst, nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.exchanges[exchange]
	if !ok {
		return dst, fmt.Errorf("cannot route through exchange %q: %w", exchange, ErrNotFound)
	}
	r := router{t: t, key: key, extra: extra, headerSrc: headers, dst: dst, start: len(dst)}
	r.visit(e)
	return r.dst, nil
}

// appendOnce appends name to dst unless dst[start:] holds it.
func appendOnce(dst []string, start int, name string) []string {
	if slices.Contains(dst[start:], name) {
		return dst
	}
	return append(dst, name)
}

type router struct {
	t         *Topology
	key       string
	extra     []string   // CC and BCC keys
	words     []string   // key split on '.'
	extraWds  [][]string // extra's, split on first need
	headerSrc HeaderSource
	headers   map[string]any
	gotHdrs   bool
	// Exchanges visited, against binding cycles: the first, then any others. Paths are a few
	// exchanges long, so a scan beats a map, and the common one-exchange route allocates
	// nothing.
	first *Exchange
	more  []*Exchange
	dst   []string
	start int
}

func (r *router) visit(e *Exchange) {
	switch {
	case r.first == nil:
		r.first = e
	case r.first == e || slices.Contains(r.more, e):
		return
	default:
		r.more = append(r.more, e)
	}
	matched := false
	if e.Type == Direct {
		for _, b := range e.direct[r.key] {
			matched = true
			r.deliver(b.Dest)
		}
		for _, k := range r.extra {
			for _, b := range e.direct[k] {
				matched = true
				r.deliver(b.Dest)
			}
		}
	} else {
		for _, b := range e.bindings {
			if r.matches(e.Type, b) {
				matched = true
				r.deliver(b.Dest)
			}
		}
	}
	if !matched {
		if ae, ok := e.Args[AlternateExchange].(string); ok {
			if x, ok := r.t.exchanges[ae]; ok {
				r.visit(x)
			}
		}
	}
}

func (r *router) matches(typ string, b *Binding) bool {
	switch typ {
	case Fanout:
		return true
	case Topic:
		if r.words == nil {
			r.words = strings.Split(r.key, ".")
		}
		if topicMatch(b.words, r.words) {
			return true
		}
		if len(r.extra) > 0 && r.extraWds == nil {
			for _, k := range r.extra {
				r.extraWds = append(r.extraWds, strings.Split(k, "."))
			}
		}
		for _, w := range r.extraWds {
			if topicMatch(b.words, w) {
				return true
			}
		}
		return false
	case Headers:
		if !r.gotHdrs {
			r.gotHdrs = true
			if r.headerSrc != nil {
				r.headers = r.headerSrc.Headers()
			}
		}
		return headersMatch(b.Args, r.headers)
	}
	return false
}

func (r *router) deliver(d Dest) {
	if d.Exchange {
		if e, ok := r.t.exchanges[d.Name]; ok {
			r.visit(e)
		}
		return
	}
	r.dst = appendOnce(r.dst, r.start, d.Name)
}

// Snapshot returns a copy of every exchange (without bindings) and every binding.
func (t *Topology) Snapshot() ([]Exchange, []Binding) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var exs []Exchange
	var bs []Binding
	for _, e := range t.exchanges {
		exs = append(exs, Exchange{Name: e.Name, Type: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete, Internal: e.Internal, Args: e.Args})
		for _, b := range e.bindings {
			bs = append(bs, Binding{Source: b.Source, Dest: b.Dest, Key: b.Key, Args: b.Args})
		}
	}
	return exs, bs
}
