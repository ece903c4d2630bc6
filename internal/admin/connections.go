package admin

// /api/connections from the listener's registry of live connections, every protocol. A
// connection's name is RabbitMQ's "peer -> local" form; DELETE closes it.

import (
	"net/http"
	"strconv"

	"github.com/yardmq/yard/internal/listener"
)

// Connection is one live connection as /api/connections shows it.
type Connection struct {
	Name        string `json:"name"`
	ID          uint64 `json:"id"`       // yard's connection id
	Protocol    string `json:"protocol"` // "AMQP 0-9-1" or "Kafka"
	Listener    string `json:"listener"`
	PeerHost    string `json:"peer_host"`
	Host        string `json:"host"`
	User        string `json:"user"`
	VHost       string `json:"vhost"`
	ConnectedAt int64  `json:"connected_at"` // Unix ms, as RabbitMQ
	Node        string `json:"node"`
	State       string `json:"state"`
	// Bytes received and sent (acknowledged by the peer) as the kernel counts them, with
	// their rates per second (check_rabbitmq_connections sums the rates); left out where the
	// platform does not tell.
	RecvOct        *uint64 `json:"recv_oct,omitempty"`
	RecvOctDetails *Rate   `json:"recv_oct_details,omitempty"`
	SendOct        *uint64 `json:"send_oct,omitempty"`
	SendOctDetails *Rate   `json:"send_oct_details,omitempty"`
}

func connName(c listener.Info) string { return c.Remote + " -> " + c.Local }

func (s *Server) connectionJSON(c listener.Info) Connection {
	proto := c.Protocol
	switch proto {
	case "amqp":
		proto = "AMQP 0-9-1"
	case "kafka":
		proto = "Kafka"
	}
	out := Connection{Name: connName(c), ID: c.ID, Protocol: proto, Listener: c.Listener, PeerHost: c.Remote, Host: c.Local,
		User: c.User, VHost: c.VHost, ConnectedAt: c.ConnectedAt.UnixMilli(), Node: s.cfg.Node, State: "running"}
	if c.BytesKnown {
		recv, send := c.RecvBytes, c.SentBytes
		recvRate, sendRate := s.connRates.rates(c.ID, recv, send)
		out.RecvOct, out.SendOct = &recv, &send
		out.RecvOctDetails, out.SendOctDetails = &Rate{recvRate}, &Rate{sendRate}
	}
	return out
}

func (s *Server) connections() []listener.Info {
	if s.cfg.Conns == nil {
		return nil
	}
	return s.cfg.Conns.List()
}

func (s *Server) listConnections(w http.ResponseWriter, _ *http.Request) {
	out := []Connection{}
	for _, c := range s.connections() {
		out = append(out, s.connectionJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) findConnection(w http.ResponseWriter, r *http.Request) (listener.Info, bool) {
	name := pathValue(r, "name")
	for _, c := range s.connections() {
		if connName(c) == name || strconv.FormatUint(c.ID, 10) == name {
			return c, true
		}
	}
	notFound(w)
	return listener.Info{}, false
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.findConnection(w, r); ok {
		writeJSON(w, http.StatusOK, s.connectionJSON(c))
	}
}

// closeConnection closes a connection; an AMQP client is told the reason (the
// X-Reason header, as RabbitMQ's management API).
func (s *Server) closeConnection(w http.ResponseWriter, r *http.Request) {
	c, ok := s.findConnection(w, r)
	if !ok {
		return
	}
	reason := r.Header.Get("X-Reason")
	if reason == "" {
		reason = "Closed via management plugin"
	}
	if err := s.cfg.Conns.Close(c.ID, reason); err != nil {
		notFound(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
