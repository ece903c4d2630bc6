package admin

// /api/definitions (RabbitMQ's topology export and import) and binding creation and
// deletion (/api/bindings/{vhost}/e/{source}/{q|e}/{destination}).
//
// GET exports vhosts, users (name and tags: yard keeps SCRAM credentials, not RabbitMQ's
// password hashes, so none is exported), permissions, exchanges (not the default and amq.*
// ones), queues, bindings (not the default exchange's implicit ones), and yard's Kafka
// topics under "yard_kafka_topics". POST imports the same shape: each object is declared
// as its AMQP method would (equivalent ones are left alone); a user is created only when it
// carries a "password" (yard's extension), others are skipped and listed in the answer.

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/vhost"
)

// Definitions is /api/definitions.
type Definitions struct {
	RabbitVersion   string          `json:"rabbit_version,omitempty"`
	ProductName     string          `json:"product_name,omitempty"`
	ProductVersion  string          `json:"product_version,omitempty"`
	Users           []DefUser       `json:"users"`
	VHosts          []DefVHost      `json:"vhosts"`
	Permissions     []DefPermission `json:"permissions"`
	Queues          []DefQueue      `json:"queues"`
	Exchanges       []DefExchange   `json:"exchanges"`
	Bindings        []DefBinding    `json:"bindings"`
	YardKafkaTopics []DefTopic      `json:"yard_kafka_topics"`
}

// DefUser is a user of the definitions; Password is yard's extension for import.
type DefUser struct {
	Name     string `json:"name"`
	Tags     any    `json:"tags"` // RabbitMQ 3.x writes "a,b", later versions a list
	Password string `json:"password,omitempty"`
}

// DefVHost is a vhost of the definitions.
type DefVHost struct {
	Name string `json:"name"`
}

// DefPermission is a user's permission in a vhost.
type DefPermission struct {
	User      string `json:"user"`
	VHost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// DefQueue is a queue of the definitions.
type DefQueue struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Durable    flexBool       `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// DefExchange is an exchange of the definitions.
type DefExchange struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost"`
	Type       string         `json:"type"`
	Durable    flexBool       `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Internal   flexBool       `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// DefBinding is a binding of the definitions.
type DefBinding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// DefTopic is a Kafka topic of the definitions (yard's extension).
type DefTopic struct {
	Name       string            `json:"name"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs"`
}

func (s *Server) exportDefinitions(w http.ResponseWriter, r *http.Request) {
	d := Definitions{RabbitVersion: compatVersion, ProductName: "yard", ProductVersion: s.cfg.Version,
		Users: []DefUser{}, VHosts: []DefVHost{}, Permissions: []DefPermission{}, Queues: []DefQueue{},
		Exchanges: []DefExchange{}, Bindings: []DefBinding{}, YardKafkaTopics: []DefTopic{}}
	if s.cfg.Users != nil {
		for _, u := range s.cfg.Users.Users() {
			d.Users = append(d.Users, DefUser{Name: u.Name, Tags: strings.Join(u.Tags, ",")})
		}
		for _, v := range s.cfg.Users.Vhosts() {
			d.VHosts = append(d.VHosts, DefVHost{Name: v.Name})
		}
		for _, p := range s.cfg.Users.Permissions() {
			d.Permissions = append(d.Permissions, DefPermission{User: p.User, VHost: p.Vhost, Configure: p.Configure, Write: p.Write, Read: p.Read})
		}
	}
	vs, _ := s.vhosts(w, r)
	for _, v := range vs {
		for _, q := range v.Queues() {
			o := q.Options()
			if o.Exclusive {
				continue // belongs to a connection, as RabbitMQ leaves it out
			}
			d.Queues = append(d.Queues, DefQueue{Name: q.Name(), VHost: v.Name(), Durable: flexBool(o.Durable), AutoDelete: flexBool(o.AutoDelete), Arguments: jsonArgs(o.Args)})
		}
		exs, _ := v.Topology().Snapshot()
		slices.SortFunc(exs, func(a, b route.Exchange) int { return strings.Compare(a.Name, b.Name) })
		for _, e := range exs {
			if e.Name == "" || strings.HasPrefix(e.Name, "amq.") {
				continue
			}
			d.Exchanges = append(d.Exchanges, DefExchange{Name: e.Name, VHost: v.Name(), Type: e.Type, Durable: flexBool(e.Durable),
				AutoDelete: flexBool(e.AutoDelete), Internal: flexBool(e.Internal), Arguments: jsonArgs(e.Args)})
		}
		for _, b := range s.bindingsOf(v) {
			if b.Source == "" {
				continue
			}
			d.Bindings = append(d.Bindings, DefBinding{Source: b.Source, VHost: b.VHost, Destination: b.Destination,
				DestinationType: b.DestinationType, RoutingKey: b.RoutingKey, Arguments: b.Arguments})
		}
	}
	if s.cfg.Streams != nil {
		for _, t := range s.cfg.Streams.Topics() {
			if t.Internal { // the broker makes it; importing it would be refused
				continue
			}
			dt := DefTopic{Name: t.Name, Partitions: t.NumPartitions(), Configs: map[string]string{}}
			if cs, err := s.cfg.Streams.TopicConfigs(t.Name); err == nil {
				for _, c := range cs {
					if c.Source == stream.SourceTopic { // set on the topic, not a default
						dt.Configs[c.Name] = c.Value
					}
				}
			}
			d.YardKafkaTopics = append(d.YardKafkaTopics, dt)
		}
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) importDefinitions(w http.ResponseWriter, r *http.Request) {
	var d Definitions
	if err := decodeBody(r, &d); err != nil {
		badRequest(w, "cannot decode definitions: "+err.Error())
		return
	}
	fail := func(what string, err error) {
		var ve *vhost.Error
		if errors.As(err, &ve) {
			badRequest(w, what+": "+ve.Detail)
			return
		}
		badRequest(w, what+": "+err.Error())
	}
	skipped := []string{}
	if s.cfg.Users != nil {
		for _, v := range d.VHosts {
			if err := s.cfg.Users.AddVhost(v.Name, ""); err != nil && !errors.Is(err, auth.ErrExists) {
				fail("cannot import vhost "+v.Name, err)
				return
			}
		}
		for _, u := range d.Users {
			if u.Password == "" {
				skipped = append(skipped, "user "+u.Name+" (no password: yard cannot use RabbitMQ's password hashes)")
				continue
			}
			pw := u.Password
			if _, err := s.cfg.Users.PutUser(u.Name, &pw, defTags(u.Tags)); err != nil {
				fail("cannot import user "+u.Name, err)
				return
			}
		}
		for _, p := range d.Permissions {
			if err := s.cfg.Users.SetPermission(p.User, p.VHost, auth.Permission{Configure: p.Configure, Write: p.Write, Read: p.Read}); err != nil {
				fail("cannot import permission of "+p.User+" in "+p.VHost, err)
				return
			}
		}
	}
	host := func(name string) *vhost.VHost {
		if s.cfg.VHosts == nil {
			return nil
		}
		return s.cfg.VHosts.Get(name)
	}
	for _, e := range d.Exchanges {
		v := host(e.VHost)
		if v == nil {
			fail("cannot import exchange "+e.Name, errors.New("no vhost "+e.VHost))
			return
		}
		if err := v.DeclareExchange(route.Exchange{Name: e.Name, Type: e.Type, Durable: bool(e.Durable), AutoDelete: bool(e.AutoDelete),
			Internal: bool(e.Internal), Args: amqpArgs(e.Arguments)}); err != nil {
			fail("cannot import exchange "+e.Name, err)
			return
		}
	}
	for _, q := range d.Queues {
		v := host(q.VHost)
		if v == nil {
			fail("cannot import queue "+q.Name, errors.New("no vhost "+q.VHost))
			return
		}
		if _, _, err := v.DeclareQueue(vhost.QueueDeclaration{Name: q.Name, Durable: bool(q.Durable), AutoDelete: bool(q.AutoDelete), Args: amqpArgs(q.Arguments)}); err != nil {
			fail("cannot import queue "+q.Name, err)
			return
		}
	}
	for _, b := range d.Bindings {
		v := host(b.VHost)
		if v == nil {
			fail("cannot import binding", errors.New("no vhost "+b.VHost))
			return
		}
		if err := v.Bind(route.Binding{Source: b.Source, Dest: route.Dest{Exchange: b.DestinationType == "exchange", Name: b.Destination},
			Key: b.RoutingKey, Args: amqpArgs(b.Arguments)}, nil); err != nil {
			fail("cannot import binding of "+b.Destination, err)
			return
		}
	}
	if s.cfg.Streams != nil {
		for _, t := range d.YardKafkaTopics {
			if _, ok := s.cfg.Streams.Topic(t.Name); ok {
				continue
			}
			if _, err := s.cfg.Streams.CreateTopic(t.Name, max(t.Partitions, 1), t.Configs, false); err != nil {
				fail("cannot import topic "+t.Name, err)
				return
			}
		}
	}
	if len(skipped) > 0 {
		writeJSON(w, http.StatusOK, map[string]any{"skipped": skipped})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func defTags(t any) []string {
	switch x := t.(type) {
	case string:
		if x == "" {
			return nil
		}
		return strings.Split(x, ",")
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// bindingDest is the destination named by /api/bindings/{vhost}/e/{source}/{dtype}/{dest}.
func bindingDest(r *http.Request) (route.Dest, bool) {
	switch pathValue(r, "dtype") {
	case "q":
		return route.Dest{Name: pathValue(r, "dest")}, true
	case "e":
		return route.Dest{Exchange: true, Name: pathValue(r, "dest")}, true
	}
	return route.Dest{}, false
}

// bindingPath is the vhost and the destination a /api/bindings/{vhost}/e/{source}/{dtype}/{dest}
// path names. The vhost is nil when the response is written already: 404 for an unknown vhost
// or destination type.
func (s *Server) bindingPath(w http.ResponseWriter, r *http.Request) (*vhost.VHost, route.Dest) {
	v := s.vhostOf(w, r)
	if v == nil {
		return nil, route.Dest{}
	}
	dest, ok := bindingDest(r)
	if !ok {
		notFound(w)
		return nil, route.Dest{}
	}
	return v, dest
}

// bindingsBetween is v's bindings from the path's {source} exchange to dest ([] if none).
func (s *Server) bindingsBetween(v *vhost.VHost, r *http.Request, dest route.Dest) []Binding {
	typ := map[bool]string{false: "queue", true: "exchange"}[dest.Exchange]
	out := []Binding{}
	for _, b := range s.bindingsOf(v) {
		if b.Source == pathValue(r, "source") && b.Destination == dest.Name && b.DestinationType == typ {
			out = append(out, b)
		}
	}
	return out
}

func (s *Server) createBinding(w http.ResponseWriter, r *http.Request) {
	v, dest := s.bindingPath(w, r)
	if v == nil {
		return
	}
	var body struct {
		RoutingKey string         `json:"routing_key"`
		Arguments  map[string]any `json:"arguments"`
	}
	if err := decodeBody(r, &body); err != nil {
		badRequest(w, "cannot decode binding: "+err.Error())
		return
	}
	b := route.Binding{Source: pathValue(r, "source"), Dest: dest, Key: body.RoutingKey, Args: amqpArgs(body.Arguments)}
	if err := v.Bind(b, nil); err != nil {
		domainError(w, err)
		return
	}
	pk := b.Key
	if pk == "" {
		pk = "~"
	}
	w.Header().Set("Location", pk)
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) listBindingsBetween(w http.ResponseWriter, r *http.Request) {
	v, dest := s.bindingPath(w, r)
	if v == nil {
		return
	}
	writeJSON(w, http.StatusOK, s.bindingsBetween(v, r, dest))
}

// deleteBinding deletes the binding whose properties_key is {props} (the routing key, "~"
// for an empty one; yard does not tell bindings apart by arguments).
func (s *Server) deleteBinding(w http.ResponseWriter, r *http.Request) {
	v, dest := s.bindingPath(w, r)
	if v == nil {
		return
	}
	for _, b := range s.bindingsBetween(v, r, dest) {
		if b.Source != "" && b.PropertiesKey == pathValue(r, "props") {
			if err := v.Unbind(route.Binding{Source: b.Source, Dest: dest, Key: b.RoutingKey, Args: amqpArgs(b.Arguments)}, nil); err != nil {
				domainError(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	notFound(w)
}
