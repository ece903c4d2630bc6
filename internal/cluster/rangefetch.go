package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// RangeStateMachine is a ReferenceStateMachine that can fetch from another member the state a
// snapshot refers to and it lacks (a replicated partition: the log range between its end and
// the snapshot's). A member sent such a snapshot that it cannot restore asks RangeRequest what
// it needs, sends that request to the snapshot's sender (or, failing that, to another voter),
// whose ReadRange answers with at most rangeChunkBytes, and hands each answer to WriteRange,
// which stores it durably and returns the next request, until CanRestore holds; the snapshot
// then goes to Raft, which restores it (Restore) and continues from its index.
//
// ReadRange runs on the serving member's range goroutines, concurrently with its group's
// Apply; RangeRequest and WriteRange run on the fetching member's fetch goroutine,
// concurrently with Apply too (a new leader may still hold the entries the member lacks):
// the state machine serialises them, and an Apply must win over a fetch in progress.
type RangeStateMachine interface {
	ReferenceStateMachine
	// RangeRequest returns the first request for what this member lacks to restore snap.
	RangeRequest(snap []byte) ([]byte, error)
	// ReadRange answers a peer's request with at most maxBytes of this member's durable state.
	ReadRange(req []byte, maxBytes int) ([]byte, error)
	// WriteRange stores a response, durably, and returns the next request, or done once
	// this member can restore snap.
	WriteRange(snap, resp []byte) (next []byte, done bool, err error)
}

// Range fetch limits and timings.
const (
	rangeChunkBytes  = 1 << 20          // state in one range response
	rangeTimeout     = 10 * time.Second // a request unanswered this long is sent elsewhere
	rangeServeQueue  = 64               // requests waiting to be served; more are dropped
	rangeServers     = 2                // goroutines serving requests (reading state)
	rangeFetchesMax  = 4                // groups of one host fetching at once; the rest wait
	rangeAttemptsMax = 30               // failed requests in a row before a fetch gives up
	rangeBackoffMin  = 50 * time.Millisecond
	rangeBackoffMax  = 2 * time.Second
)

// ranges is a host's range fetch state: its waiting requests and its serving queue.
type ranges struct {
	mu    sync.Mutex
	waits map[uint64]chan rangeMsg // by request id
	serve chan rangeServe
	slots chan struct{} // one per fetch running
}

type rangeServe struct {
	from uint64
	m    rangeMsg
}

func newRanges() *ranges {
	return &ranges{waits: make(map[uint64]chan rangeMsg), serve: make(chan rangeServe, rangeServeQueue),
		slots: make(chan struct{}, rangeFetchesMax)}
}

// startRanges starts the goroutines serving the peers' range requests.
func (h *Host) startRanges() {
	for range rangeServers {
		h.wg.Add(1)
		go h.serveRanges()
	}
}

// deliverRange is the transport's hand-off of a range frame from peer from.
func (h *Host) deliverRange(from uint64, kind byte, m rangeMsg) {
	if kind == frameRangeResp {
		h.rng.mu.Lock()
		ch := h.rng.waits[m.id]
		delete(h.rng.waits, m.id)
		h.rng.mu.Unlock()
		if ch != nil {
			ch <- m // buffered 1, and the id is gone: never blocks
		}
		return
	}
	select {
	case h.rng.serve <- rangeServe{from, m}:
	default: // the requester retries after its timeout
	}
}

func (h *Host) serveRanges() {
	defer h.wg.Done()
	for {
		select {
		case <-h.stop:
			return
		case r := <-h.rng.serve:
			resp := rangeMsg{id: r.m.id, group: r.m.group}
			data, err := h.readRange(r.m)
			if err != nil {
				resp.status, resp.data = rangeError, []byte(err.Error())
			} else {
				resp.data = data
			}
			h.tr.sendRange(r.from, frameRangeResp, resp)
		}
	}
}

func (h *Host) readRange(m rangeMsg) ([]byte, error) {
	g := h.Group(m.group)
	if g == nil {
		return nil, fmt.Errorf("cannot read range: node %d has no group %d", h.id, m.group)
	}
	rsm, ok := g.sm.(RangeStateMachine)
	if !ok {
		return nil, fmt.Errorf("cannot read range: group %d's state machine has none", m.group)
	}
	return rsm.ReadRange(m.data, rangeChunkBytes)
}

// requestRange sends req for group to peer and waits for its answer.
func (h *Host) requestRange(ctx context.Context, peer, group uint64, req []byte) ([]byte, error) {
	id := h.seq.Add(1)
	ch := make(chan rangeMsg, 1)
	h.rng.mu.Lock()
	h.rng.waits[id] = ch
	h.rng.mu.Unlock()
	defer func() {
		h.rng.mu.Lock()
		delete(h.rng.waits, id)
		h.rng.mu.Unlock()
	}()
	if !h.tr.sendRange(peer, frameRangeReq, rangeMsg{id: id, group: group, data: req}) {
		return nil, fmt.Errorf("cannot request range of group %d from node %d: its send queue is full", group, peer)
	}
	t := time.NewTimer(rangeTimeout)
	defer t.Stop()
	select {
	case m := <-ch:
		if m.status != rangeOK {
			return nil, fmt.Errorf("cannot fetch range of group %d from node %d: %s", group, peer, m.data)
		}
		return m.data, nil
	case <-t.C:
		return nil, fmt.Errorf("cannot fetch range of group %d from node %d: no answer within %v", group, peer, rangeTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// maybeFetch starts fetching what snapshot message m refers to, if the group's state machine
// can fetch and no fetch runs. Called by the group's round.
func (g *Group) maybeFetch(m *pb.Message) {
	rsm, ok := g.sm.(RangeStateMachine)
	if !ok || !g.fetching.CompareAndSwap(false, true) {
		return
	}
	h := g.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		g.fetching.Store(false)
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		defer g.fetching.Store(false)
		select { // at most rangeFetchesMax at once: each has one response in flight
		case h.rng.slots <- struct{}{}:
			defer func() { <-h.rng.slots }()
		case <-h.stop:
			return
		}
		if err := g.fetch(rsm, m); err != nil {
			// Logged once per snapshot: the leader sends it again and again meanwhile.
			lvl, idx := slog.LevelDebug, m.GetSnapshot().GetMetadata().GetIndex()
			if g.fetchFailed.Swap(idx) != idx && !errors.Is(err, ErrClosed) {
				lvl = slog.LevelError
			}
			h.log.Log(context.Background(), lvl, "cluster: cannot fetch the state a snapshot refers to; retrying when the snapshot comes again", "group", g.id, "index", idx, "error", err)
			return
		}
		// The member holds what the snapshot refers to: Raft restores it now.
		g.fetched.Add(1)
		g.mbMu.Lock()
		g.mb.msgs = append(g.mb.msgs, m)
		g.mbMu.Unlock()
		h.schedule(g, true)
	}()
}

// fetch runs rsm's range requests against the snapshot's sender, or another voter when one
// fails, one request at a time (each answer is written before the next is asked for).
func (g *Group) fetch(rsm RangeStateMachine, m *pb.Message) error {
	h := g.h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	snap := m.GetSnapshot().GetData()
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	req, err := rsm.RangeRequest(snap)
	if err != nil {
		return err
	}
	sources := []uint64{m.GetFrom()}
	for _, v := range g.voters {
		if v != h.id && v != m.GetFrom() {
			sources = append(sources, v)
		}
	}
	h.log.Info("cluster: fetching the state a snapshot refers to", "group", g.id, "index", idx, "from", m.GetFrom())
	src, failures, backoff := 0, 0, rangeBackoffMin
	start, chunks := time.Now(), 0
	for {
		resp, err := h.requestRange(ctx, sources[src], g.id, req)
		if err != nil {
			if ctx.Err() != nil {
				return ErrClosed
			}
			if failures++; failures >= rangeAttemptsMax {
				return err
			}
			h.log.Debug("cluster: range request failed", "group", g.id, "peer", sources[src], "error", err)
			src = (src + 1) % len(sources)
			select {
			case <-ctx.Done():
				return ErrClosed
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, rangeBackoffMax)
			continue
		}
		failures, backoff = 0, rangeBackoffMin
		next, done, err := rsm.WriteRange(snap, resp)
		if err != nil {
			return err
		}
		chunks++
		if done {
			h.log.Info("cluster: fetched the state a snapshot refers to", "group", g.id, "index", idx, "responses", chunks, "took", time.Since(start))
			return nil
		}
		if next == nil {
			return errors.New("BUG: WriteRange returned no next request before done")
		}
		req = next
	}
}
