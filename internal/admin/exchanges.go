package admin

// /api/exchanges and /api/bindings, in RabbitMQ's JSON shape. The default exchange is named
// "" in JSON and "amq.default" in URLs, as in RabbitMQ.

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/vhost"
)

// Exchange is one exchange as /api/exchanges shows it.
type Exchange struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// Binding is one binding as /api/bindings shows it.
type Binding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"` // queue or exchange
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
	PropertiesKey   string         `json:"properties_key"`
}

func exchangeJSON(v *vhost.VHost, e route.Exchange) Exchange {
	return Exchange{Name: e.Name, VHost: v.Name(), Type: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: jsonArgs(e.Args)}
}

func (s *Server) listExchanges(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.vhosts(w, r)
	if !ok {
		return
	}
	out := []Exchange{}
	for _, v := range vs {
		exs, _ := v.Topology().Snapshot()
		slices.SortFunc(exs, func(a, b route.Exchange) int { return cmp.Compare(a.Name, b.Name) })
		for _, e := range exs {
			out = append(out, exchangeJSON(v, e))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// exchangeName maps a URL's exchange name to the topology's ("amq.default" is "").
func exchangeName(r *http.Request) string {
	n := pathValue(r, "name")
	if n == "amq.default" {
		return ""
	}
	return n
}

func (s *Server) getExchange(w http.ResponseWriter, r *http.Request) {
	v := s.vhostOf(w, r)
	if v == nil {
		return
	}
	e, ok := v.Topology().Lookup(exchangeName(r))
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, exchangeJSON(v, e))
}

type exchangeDecl struct {
	Type       string         `json:"type"`
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Internal   flexBool       `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func (s *Server) putExchange(w http.ResponseWriter, r *http.Request) {
	v := s.vhostOf(w, r)
	if v == nil {
		return
	}
	var d exchangeDecl
	if err := decodeBody(r, &d); err != nil {
		badRequest(w, "cannot decode exchange declaration: "+err.Error())
		return
	}
	if d.Type == "" {
		badRequest(w, "[{key_missing,type}]")
		return
	}
	name := exchangeName(r)
	_, existed := v.Topology().Lookup(name)
	err := v.DeclareExchange(route.Exchange{Name: name, Type: d.Type, Durable: d.Durable.or(true),
		AutoDelete: bool(d.AutoDelete), Internal: bool(d.Internal), Args: amqpArgs(d.Arguments)})
	if err != nil {
		domainError(w, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) deleteExchange(w http.ResponseWriter, r *http.Request) {
	v := s.vhostOf(w, r)
	if v == nil {
		return
	}
	name := exchangeName(r)
	if _, ok := v.Topology().Lookup(name); !ok {
		notFound(w)
		return
	}
	if err := v.DeleteExchange(name, r.URL.Query().Get("if-unused") == "true"); err != nil {
		domainError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bindingsOf lists a vhost's bindings, the default exchange's implicit binding to every
// queue first, as RabbitMQ lists them.
func (s *Server) bindingsOf(v *vhost.VHost) []Binding {
	out := []Binding{}
	for _, q := range v.Queues() {
		out = append(out, Binding{Source: "", VHost: v.Name(), Destination: q.Name(), DestinationType: "queue",
			RoutingKey: q.Name(), Arguments: map[string]any{}, PropertiesKey: q.Name()})
	}
	_, bs := v.Topology().Snapshot()
	slices.SortFunc(bs, func(a, b route.Binding) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Dest.Name, b.Dest.Name), cmp.Compare(a.Key, b.Key))
	})
	for _, b := range bs {
		typ := "queue"
		if b.Dest.Exchange {
			typ = "exchange"
		}
		pk := b.Key
		if pk == "" {
			pk = "~"
		}
		out = append(out, Binding{Source: b.Source, VHost: v.Name(), Destination: b.Dest.Name, DestinationType: typ,
			RoutingKey: b.Key, Arguments: jsonArgs(b.Args), PropertiesKey: pk})
	}
	return out
}

func (s *Server) listBindings(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.vhosts(w, r)
	if !ok {
		return
	}
	out := []Binding{}
	for _, v := range vs {
		out = append(out, s.bindingsOf(v)...)
	}
	writeJSON(w, http.StatusOK, out)
}
