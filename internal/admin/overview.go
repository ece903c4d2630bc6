package admin

// /api/overview and /api/aliveness-test.

import (
	"net/http"
)

// Overview is /api/overview: the fields monitoring tools read (object_totals, queue_totals).
type Overview struct {
	ManagementVersion string         `json:"management_version"`
	RabbitMQVersion   string         `json:"rabbitmq_version"`
	ProductName       string         `json:"product_name"`
	ProductVersion    string         `json:"product_version"`
	Node              string         `json:"node"`
	ClusterName       string         `json:"cluster_name"`
	ObjectTotals      map[string]int `json:"object_totals"`
	QueueTotals       QueueTotals    `json:"queue_totals"`
	MessageStats      map[string]any `json:"message_stats"`
	Listeners         []any          `json:"listeners"`
	Contexts          []any          `json:"contexts"`
}

// QueueTotals sums every queue's messages.
type QueueTotals struct {
	Messages               int64 `json:"messages"`
	MessagesReady          int64 `json:"messages_ready"`
	MessagesUnacknowledged int64 `json:"messages_unacknowledged"`
}

// compatVersion is the RabbitMQ version yard's management API imitates; tools that check it
// (rabbitmqadmin picks its behaviour by it) see a current 3.x.
const compatVersion = "3.13.0"

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	o := Overview{
		ManagementVersion: compatVersion, RabbitMQVersion: compatVersion,
		ProductName: "yard", ProductVersion: s.cfg.Version, Node: s.cfg.Node, ClusterName: s.cfg.Node,
		ObjectTotals: map[string]int{"connections": 0, "channels": 0, "exchanges": 0, "queues": 0, "consumers": 0},
		MessageStats: map[string]any{}, Listeners: []any{}, Contexts: []any{},
	}
	if s.cfg.Conns != nil {
		o.ObjectTotals["connections"] = s.cfg.Conns.Len()
	}
	if s.cfg.AMQP != nil {
		o.ObjectTotals["channels"] = s.cfg.AMQP.Channels()
	}
	vs, _ := s.vhosts(w, r)
	for _, v := range vs {
		exs, _ := v.Topology().Snapshot()
		o.ObjectTotals["exchanges"] += len(exs)
		for _, q := range v.Queues() {
			ready, unacked, consumers := q.Counts()
			o.ObjectTotals["queues"]++
			o.ObjectTotals["consumers"] += consumers
			o.QueueTotals.MessagesReady += int64(ready)
			o.QueueTotals.MessagesUnacknowledged += int64(unacked)
			o.QueueTotals.Messages += int64(ready + unacked)
		}
	}
	writeJSON(w, http.StatusOK, o)
}

// aliveness answers RabbitMQ's aliveness test: {"status":"ok"} when the vhost exists.
func (s *Server) aliveness(w http.ResponseWriter, r *http.Request) {
	if v := s.vhostOf(w, r); v != nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
