package admin

// /api/kafka/topics and /api/kafka/groups: yard's Kafka resources beside the RabbitMQ-shaped
// API. Lag is the committed offset against the log end, the numbers `yard groups describe`
// and kafka_consumergroup_lag report.

import (
	"context"
	"errors"
	"net/http"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
)

// Topic is one Kafka topic.
type Topic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions []TopicPartition  `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"` // only on /api/kafka/topics/{name}
	SizeBytes  int64             `json:"size_bytes"`
	Messages   int64             `json:"messages"`           // sum of end - start offsets
	Internal   bool              `json:"internal,omitempty"` // __consumer_offsets
}

// TopicPartition is one partition of a topic.
type TopicPartition struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	SizeBytes   int64 `json:"size_bytes"`
}

func topicJSON(t *stream.Topic) Topic {
	out := Topic{Name: t.Name, ID: t.ID.String(), Partitions: []TopicPartition{}, Internal: t.Internal}
	for _, p := range t.Partitions() {
		tp := TopicPartition{Partition: p.Index, StartOffset: p.StartOffset(), EndOffset: p.EndOffset(), SizeBytes: p.Size()}
		out.Partitions = append(out.Partitions, tp)
		out.SizeBytes += tp.SizeBytes
		out.Messages += tp.EndOffset - tp.StartOffset
	}
	return out
}

func (s *Server) listTopics(w http.ResponseWriter, _ *http.Request) {
	out := []Topic{}
	if s.cfg.Streams != nil {
		for _, t := range s.cfg.Streams.Topics() {
			out = append(out, topicJSON(t))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getTopic(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Streams == nil {
		notFound(w)
		return
	}
	t, ok := s.cfg.Streams.Topic(pathValue(r, "name"))
	if !ok {
		notFound(w)
		return
	}
	out := topicJSON(t)
	out.Configs = map[string]string{}
	if cs, err := s.cfg.Streams.TopicConfigs(t.Name); err == nil {
		for _, c := range cs {
			out.Configs[c.Name] = c.Value
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Group is one consumer group with its lag.
type Group struct {
	Name         string           `json:"name"`
	State        string           `json:"state"`
	Type         string           `json:"type,omitempty"`
	ProtocolType string           `json:"protocol_type,omitempty"`
	Protocol     string           `json:"protocol,omitempty"`
	Members      []GroupMember    `json:"members,omitempty"` // only on /api/kafka/groups/{name}
	Lag          int64            `json:"lag"`               // total over its partitions
	Partitions   []GroupPartition `json:"partitions"`
}

// GroupMember is one member of a group.
type GroupMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	ClientHost string `json:"client_host"`
}

// GroupPartition is a partition a group has committed an offset for or has assigned.
type GroupPartition struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"` // -1: none
	LogEndOffset    int64  `json:"log_end_offset"`   // -1: unknown partition
	Lag             int64  `json:"lag"`              // -1: unknown
	MemberID        string `json:"member_id,omitempty"`
	ClientID        string `json:"client_id,omitempty"`
	ClientHost      string `json:"client_host,omitempty"`
}

func groupJSON(gl group.GroupLag) Group {
	g := Group{Name: gl.Group, State: gl.State.String(), Partitions: []GroupPartition{}}
	for _, p := range gl.Partitions {
		g.Partitions = append(g.Partitions, GroupPartition{Topic: p.Topic, Partition: p.Partition, CommittedOffset: p.Committed,
			LogEndOffset: p.LogEnd, Lag: p.Lag, MemberID: p.MemberID, ClientID: p.ClientID, ClientHost: p.ClientHost})
		if p.Lag > 0 {
			g.Lag += p.Lag
		}
	}
	return g
}

func (s *Server) lag(ctx context.Context) ([]group.GroupLag, error) {
	if s.cfg.Groups == nil {
		return nil, nil
	}
	return s.cfg.Groups.Lag(ctx)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	gls, err := s.lag(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	out := []Group{}
	for _, gl := range gls {
		out = append(out, groupJSON(gl))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) {
	name := pathValue(r, "name")
	if s.cfg.Groups == nil {
		notFound(w)
		return
	}
	d, err := s.cfg.Groups.Describe(r.Context(), name)
	if errors.Is(err, group.ErrGroupIDNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	gls, err := s.lag(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	g := Group{Name: name, State: d.State.String(), Partitions: []GroupPartition{}}
	for _, gl := range gls {
		if gl.Group == name {
			g = groupJSON(gl)
		}
	}
	g.Type, g.ProtocolType, g.Protocol = d.Type, d.ProtocolType, d.Protocol
	for _, m := range d.Members {
		g.Members = append(g.Members, GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost})
	}
	writeJSON(w, http.StatusOK, g)
}
