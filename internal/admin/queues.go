package admin

// /api/queues: list, show, declare (PUT), delete and purge, in RabbitMQ's JSON shape.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/yardmq/yard/internal/vhost"
)

// Queue is one queue as /api/queues shows it (RabbitMQ's field names).
type Queue struct {
	Name                   string         `json:"name"`
	VHost                  string         `json:"vhost"`
	Type                   string         `json:"type"` // classic, quorum or stream
	Durable                bool           `json:"durable"`
	AutoDelete             bool           `json:"auto_delete"`
	Exclusive              bool           `json:"exclusive"`
	Arguments              map[string]any `json:"arguments"`
	Node                   string         `json:"node"`
	State                  string         `json:"state"`
	Messages               int64          `json:"messages"`
	MessagesReady          int64          `json:"messages_ready"`
	MessagesUnacknowledged int64          `json:"messages_unacknowledged"`
	Consumers              int            `json:"consumers"`
	MessageStats           MessageStats   `json:"message_stats"`
	// LeaderNodeID is the cluster node id leading a replicated quorum queue (yard's own).
	LeaderNodeID uint64 `json:"leader_node_id,omitempty"`
}

func (s *Server) queueJSON(v *vhost.VHost, q *vhost.Queue) Queue {
	o := q.Options()
	ready, unacked, consumers := q.Counts()
	typ := "classic"
	switch {
	case q.Stream != nil:
		typ = "stream"
	case q.Quorum:
		typ = "quorum"
	}
	args := jsonArgs(o.Args)
	return Queue{
		Name: q.Name(), VHost: v.Name(), Type: typ,
		Durable: o.Durable, AutoDelete: o.AutoDelete, Exclusive: o.Exclusive, Arguments: args,
		Node: s.cfg.Node, State: "running",
		Messages: int64(ready + unacked), MessagesReady: int64(ready), MessagesUnacknowledged: int64(unacked),
		Consumers: consumers, MessageStats: s.rates.messageStats(q), LeaderNodeID: q.LeaderNode(),
	}
}

// jsonArgs makes AMQP field-table values JSON-friendly (byte slices as strings, nested
// tables kept), never nil (RabbitMQ shows {}).
func jsonArgs(args map[string]any) map[string]any {
	out := make(map[string]any, len(args))
	for k, v := range args {
		switch x := v.(type) {
		case []byte:
			out[k] = string(x)
		case map[string]any:
			out[k] = jsonArgs(x)
		default:
			out[k] = v
		}
	}
	return out
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.vhosts(w, r)
	if !ok {
		return
	}
	pg, paged, ok := pageOf(w, r)
	if !ok {
		return
	}
	out := []Queue{}
	total := 0
	for _, v := range vs {
		for _, q := range v.Queues() {
			total++
			if paged && !pg.match(q.Name()) {
				continue
			}
			out = append(out, s.queueJSON(v, q))
		}
	}
	if !paged {
		writeJSON(w, http.StatusOK, out)
		return
	}
	slices.SortFunc(out, func(a, b Queue) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.VHost, b.VHost)) })
	writeJSON(w, http.StatusOK, cut(pg, out, total))
}

func (s *Server) lookupQueue(w http.ResponseWriter, r *http.Request) (*vhost.VHost, *vhost.Queue) {
	v := s.vhostOf(w, r)
	if v == nil {
		return nil, nil
	}
	q := v.Queue(pathValue(r, "name"))
	if q == nil {
		notFound(w)
		return nil, nil
	}
	return v, q
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	if v, q := s.lookupQueue(w, r); q != nil {
		writeJSON(w, http.StatusOK, s.queueJSON(v, q))
	}
}

// queueDecl is the body of PUT /api/queues/{vhost}/{name}.
type queueDecl struct {
	Durable    *flexBool      `json:"durable"`
	AutoDelete flexBool       `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// flexBool is a JSON boolean that may also come as a string ("true", "false"), as
// rabbitmqadmin sends them and RabbitMQ accepts.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null", `""`:
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}

// or returns the value, or def when it was not given.
func (b *flexBool) or(def bool) bool {
	if b == nil {
		return def
	}
	return bool(*b)
}

// decodeBody reads a JSON body into v; numbers stay exact (integers become int64, as
// RabbitMQ turns them into AMQP longs). An empty body is an empty object.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		return err
	}
	return nil
}

// amqpArgs converts decoded JSON arguments to the AMQP field values the domain knows.
func amqpArgs(in map[string]any) map[string]any {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = amqpValue(v)
	}
	return out
}

func amqpValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		return amqpArgs(x)
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = amqpValue(x[i])
		}
		return out
	}
	return v
}

func (s *Server) putQueue(w http.ResponseWriter, r *http.Request) {
	v := s.vhostOf(w, r)
	if v == nil {
		return
	}
	var d queueDecl
	if err := decodeBody(r, &d); err != nil {
		badRequest(w, "cannot decode queue declaration: "+err.Error())
		return
	}
	durable := d.Durable.or(true) // RabbitMQ's management API defaults to durable
	name := pathValue(r, "name")
	if name == "" {
		badRequest(w, "queue name is empty")
		return
	}
	_, created, err := v.DeclareQueue(vhost.QueueDeclaration{Name: name, Durable: durable, AutoDelete: bool(d.AutoDelete), Args: amqpArgs(d.Arguments)})
	if err != nil {
		domainError(w, err)
		return
	}
	if created {
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) deleteQueue(w http.ResponseWriter, r *http.Request) {
	v, q := s.lookupQueue(w, r)
	if q == nil {
		return
	}
	qv := r.URL.Query()
	_, _, err := v.DeleteQueueIf(q.Name(), q.Owner, qv.Get("if-unused") == "true", qv.Get("if-empty") == "true")
	if err != nil {
		domainError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) purgeQueue(w http.ResponseWriter, r *http.Request) {
	_, q := s.lookupQueue(w, r)
	if q == nil {
		return
	}
	if q.Stream != nil {
		badRequest(w, "a stream queue cannot be purged (its retention removes messages)")
		return
	}
	q.Purge()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) queueBindings(w http.ResponseWriter, r *http.Request) {
	v, q := s.lookupQueue(w, r)
	if q == nil {
		return
	}
	out := []Binding{}
	for _, b := range s.bindingsOf(v) {
		if b.DestinationType == "queue" && b.Destination == q.Name() {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, out)
}
