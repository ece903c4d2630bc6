package admin

// POST /api/kafka/groups/{name}/reset-offsets {"to": "earliest" | "latest"}: moves every
// offset the group has committed to its partition's log start or end, as
// `kafka-consumer-groups --reset-offsets --to-earliest|--to-latest --execute` does. Kafka
// allows it only while the group has no members; with members it is 409 and nothing moves.

import (
	"errors"
	"net/http"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
)

func (s *Server) routeGroupReset() {
	s.mux.Handle("POST /api/kafka/groups/{name}/reset-offsets", s.authed(admin, s.resetGroupOffsets))
}

func (s *Server) resetGroupOffsets(w http.ResponseWriter, r *http.Request, _ auth.User) {
	var req struct {
		To string `json:"to"`
	}
	if !readBody(w, r, &req) {
		return
	}
	if req.To != "earliest" && req.To != "latest" {
		badRequest(w, `"to" must be "earliest" or "latest"`)
		return
	}
	name := pathValue(r, "name")
	if s.cfg.Groups == nil || s.cfg.Streams == nil {
		notFound(w)
		return
	}
	offs := map[group.TopicPartition]group.OffsetValue{}
	for _, f := range s.cfg.Groups.FetchOffsets(name, nil) {
		t, ok := s.cfg.Streams.Topic(f.Topic)
		var p *stream.Partition
		if ok {
			p = t.Partition(f.Partition)
		}
		if p == nil {
			continue // the topic is gone, or this node holds no replica of it: nothing to move
		}
		at := p.StartOffset()
		if req.To == "latest" {
			at = p.EndOffset()
		}
		offs[f.TopicPartition] = group.OffsetValue{Offset: at, LeaderEpoch: -1, Metadata: f.Metadata}
	}
	if len(offs) == 0 {
		notFound(w)
		return
	}
	res, err := s.cfg.Groups.Commit(r.Context(), group.CommitRequest{Group: name, Generation: -1, Offsets: offs})
	switch {
	case errors.Is(err, group.ErrGroupIDNotFound):
		notFound(w)
		return
	case errors.Is(err, group.ErrUnknownMemberID), errors.Is(err, group.ErrRebalanceInProgress), errors.Is(err, group.ErrIllegalGeneration):
		writeError(w, http.StatusConflict, "conflict", "the group has members: stop its consumers before resetting its offsets")
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", "cannot reset offsets: "+err.Error())
		return
	}
	for tp, perr := range res {
		if perr != nil {
			writeError(w, http.StatusInternalServerError, "internal_error", "cannot reset the offset of "+tp.Topic+": "+perr.Error())
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
