package kafka

// Fetch sessions (KIP-227): the broker-wide cache of incremental fetch sessions, and the
// per-request fetch context derived from a request's SessionID and SessionEpoch.
//
// As in Kafka (FetchManager.newContext):
//   - epoch -1 (FINAL): a full fetch without a session; a non-zero session ID names a session
//     to close. The response's session ID is 0.
//   - epoch 0 (INITIAL): a full fetch; a non-zero session ID names a session to close, and a
//     new session is created when the cache has room (or can evict), its ID in the response.
//     A request with no partitions creates no session.
//   - epoch n > 0: an incremental fetch of session ID. The request carries only partitions
//     added or changed (fetch offset, max bytes) and ForgottenTopics; the response carries
//     only partitions with records, a changed high watermark, last stable offset or log start
//     offset, or an error. Unknown ID: FETCH_SESSION_ID_NOT_FOUND; epoch other than the
//     session's: INVALID_FETCH_SESSION_EPOCH; a session created with topic IDs (v13+) used
//     with names or the other way round: FETCH_SESSION_TOPIC_ID_ERROR. A session left
//     with no partitions is closed and the response is sessionless.
//
// The cache holds at most fetchSessionSlots sessions (max.incremental.fetch.session.cache.slots).
// When full, a new session may evict, as Kafka's FetchSessionCache.tryEvict does for
// non-follower sessions: first the least recently used session if it has not been used for
// fetchSessionMinAge (stale); otherwise the smallest session (fewest partitions, then lowest
// ID) among those older than fetchSessionMinAge, only if the new session is strictly larger.
// Otherwise no session is created and the client keeps sending full fetches. Sessions are
// found by a linear scan when the cache is full (1000 entries), which is cheap next to a
// fetch. yard has no followers, so Kafka's privileged (follower) sessions do not arise.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// fetchSessionSlots is Kafka's max.incremental.fetch.session.cache.slots default.
	fetchSessionSlots = 1000
	// fetchSessionMinAge is Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
	fetchSessionMinAge = 120 * time.Second
)

// fetchTopicKey names a topic in a session: by ID for sessions of v13+, else by name.
type fetchTopicKey struct {
	id   [16]byte
	name string
}

// sessionPart is one partition of a session: the request parameters last sent by the client
// and what the broker last sent back (-1 until sent, and after an error so that the partition
// is sent again once the error is gone).
type sessionPart struct {
	partition   int32
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32

	hwm, lso, logStart int64
}

type sessionTopic struct {
	key   fetchTopicKey
	parts []*sessionPart
}

type fetchSession struct {
	id           int32
	usesTopicIDs bool
	created      time.Time

	mu     sync.Mutex // guards the fields below
	epoch  int32      // the epoch the next incremental request must carry
	topics []*sessionTopic
	size   int // partitions in topics

	lastUsed time.Time // guarded by the cache's mu
}

// fetchSessionStats counts what the cache did, for tests and metrics.
type fetchSessionStats struct {
	Created     int64 // sessions created
	Evicted     int64 // sessions evicted to make room
	Closed      int64 // sessions closed by their client (full fetch naming them, or emptied)
	Full        int64 // full fetches (with or without a new session)
	Incremental int64 // incremental fetches answered
	Errors      int64 // requests answered with a session error
	Sessions    int   // sessions in the cache now
}

type fetchSessionCache struct {
	slots  int
	minAge time.Duration
	now    func() time.Time

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	stats    fetchSessionStats
}

func newFetchSessionCache(slots int) *fetchSessionCache {
	return &fetchSessionCache{slots: slots, minAge: fetchSessionMinAge, now: time.Now, sessions: map[int32]*fetchSession{}}
}

// Stats returns the counters.
func (c *fetchSessionCache) Stats() fetchSessionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Sessions = len(c.sessions)
	return st
}

// wantTopic and wantPart are the partitions one fetch reads, in response order.
type wantTopic struct {
	name  string // v4-12
	id    [16]byte
	parts []wantPart
}

type wantPart struct {
	partition   int32
	fetchOffset int64
	maxBytes    int32
	leaderEpoch int32
	sp          *sessionPart // in a session: where what was sent is recorded
}

// fetchContext is what a fetch request means once its session fields are applied.
type fetchContext struct {
	errCode     int16 // a session error: the response carries no topics
	sessionID   int32 // the response's session ID
	session     *fetchSession
	incremental bool
	topics      []wantTopic
}

func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// newContext applies the request's session fields (Kafka's FetchManager.newContext).
func (c *fetchSessionCache) newContext(req *kmsg.FetchRequest) *fetchContext {
	if req.Version < 7 {
		return &fetchContext{topics: requestWants(req)}
	}
	if req.SessionEpoch == -1 || req.SessionEpoch == 0 {
		c.mu.Lock()
		c.stats.Full++
		if req.SessionID != 0 {
			if s, ok := c.sessions[req.SessionID]; ok {
				delete(c.sessions, s.id)
				c.stats.Closed++
			}
		}
		c.mu.Unlock()
		fc := &fetchContext{topics: requestWants(req)}
		if req.SessionEpoch == 0 {
			c.maybeCreate(req, fc)
		}
		return fc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sessions[req.SessionID]
	if !ok {
		c.stats.Errors++
		return &fetchContext{errCode: kerr.FetchSessionIDNotFound.Code}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.epoch != req.SessionEpoch:
		c.stats.Errors++
		return &fetchContext{errCode: kerr.InvalidFetchSessionEpoch.Code}
	case s.usesTopicIDs != (req.Version >= 13):
		c.stats.Errors++
		return &fetchContext{errCode: kerr.FetchSessionTopicIDError.Code}
	}
	s.update(req)
	if s.size == 0 {
		delete(c.sessions, s.id)
		c.stats.Closed++
		return &fetchContext{topics: requestWants(req)}
	}
	s.lastUsed = c.now()
	s.epoch = nextSessionEpoch(s.epoch)
	c.stats.Incremental++
	fc := &fetchContext{sessionID: s.id, session: s, incremental: true}
	for _, st := range s.topics {
		wt := wantTopic{name: st.key.name, id: st.key.id, parts: make([]wantPart, len(st.parts))}
		for i, sp := range st.parts {
			wt.parts[i] = wantPart{partition: sp.partition, fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes, leaderEpoch: sp.leaderEpoch, sp: sp}
		}
		fc.topics = append(fc.topics, wt)
	}
	return fc
}

func topicKey(version int16, rt *kmsg.FetchRequestTopic) fetchTopicKey {
	if version >= 13 {
		return fetchTopicKey{id: rt.TopicID}
	}
	return fetchTopicKey{name: rt.Topic}
}

// requestWants lists the request's partitions as they are, for a fetch without a session.
func requestWants(req *kmsg.FetchRequest) []wantTopic {
	out := make([]wantTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		wt := &out[i]
		wt.name, wt.id = rt.Topic, rt.TopicID
		wt.parts = make([]wantPart, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			wt.parts[j] = wantPart{partition: rp.Partition, fetchOffset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, leaderEpoch: rp.CurrentLeaderEpoch}
		}
	}
	return out
}

// maybeCreate creates a session for a full fetch of epoch 0 if the cache has room, and
// rebuilds fc's partitions from it (duplicates in the request collapse into one).
func (c *fetchSessionCache) maybeCreate(req *kmsg.FetchRequest, fc *fetchContext) {
	s := &fetchSession{usesTopicIDs: req.Version >= 13, epoch: 1}
	s.update(req)
	if s.size == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.sessions) >= c.slots && !c.evictFor(s.size, now) {
		return
	}
	for {
		id := rand.Int32N(math.MaxInt32) + 1 // never 0, the "no session" ID
		if _, taken := c.sessions[id]; !taken {
			s.id = id
			break
		}
	}
	s.created, s.lastUsed = now, now
	c.sessions[s.id] = s
	c.stats.Created++
	fc.sessionID, fc.session = s.id, s
	fc.topics = fc.topics[:0]
	for _, st := range s.topics {
		wt := wantTopic{name: st.key.name, id: st.key.id, parts: make([]wantPart, len(st.parts))}
		for i, sp := range st.parts {
			wt.parts[i] = wantPart{partition: sp.partition, fetchOffset: sp.fetchOffset, maxBytes: sp.maxBytes, leaderEpoch: sp.leaderEpoch, sp: sp}
		}
		fc.topics = append(fc.topics, wt)
	}
}

// evictFor makes room for a new session of size partitions, as described at the top of this
// file. Called with c.mu held.
func (c *fetchSessionCache) evictFor(size int, now time.Time) bool {
	var lru, smallest *fetchSession
	smallestSize := 0
	for _, s := range c.sessions {
		if lru == nil || s.lastUsed.Before(lru.lastUsed) || s.lastUsed.Equal(lru.lastUsed) && s.id < lru.id {
			lru = s
		}
		if now.Sub(s.created) > c.minAge {
			s.mu.Lock()
			sz := s.size
			s.mu.Unlock()
			if smallest == nil || sz < smallestSize || sz == smallestSize && s.id < smallest.id {
				smallest, smallestSize = s, sz
			}
		}
	}
	victim := (*fetchSession)(nil)
	switch {
	case lru != nil && now.Sub(lru.lastUsed) > c.minAge:
		victim = lru
	case smallest != nil && size > smallestSize:
		victim = smallest
	default:
		return false
	}
	delete(c.sessions, victim.id)
	c.stats.Evicted++
	return true
}

// update applies a request's partitions (added or changed) and then its ForgottenTopics, as
// Kafka's FetchSession.update. Called with s.mu held (or before s is shared).
func (s *fetchSession) update(req *kmsg.FetchRequest) {
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := s.topic(topicKey(req.Version, rt), true)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			var sp *sessionPart
			for _, p := range st.parts {
				if p.partition == rp.Partition {
					sp = p
					break
				}
			}
			if sp == nil {
				sp = &sessionPart{partition: rp.Partition, hwm: -1, lso: -1, logStart: -1}
				st.parts = append(st.parts, sp)
				s.size++
			}
			sp.fetchOffset, sp.maxBytes, sp.leaderEpoch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
		}
	}
	for i := range req.ForgottenTopics {
		ft := &req.ForgottenTopics[i]
		key := fetchTopicKey{name: ft.Topic}
		if req.Version >= 13 {
			key = fetchTopicKey{id: ft.TopicID}
		}
		st := s.topic(key, false)
		if st == nil {
			continue
		}
		for _, p := range ft.Partitions {
			for k, sp := range st.parts {
				if sp.partition == p {
					st.parts = append(st.parts[:k], st.parts[k+1:]...)
					s.size--
					break
				}
			}
		}
	}
	// Drop topics left empty (also those a request named with no partitions).
	kept := s.topics[:0]
	for _, st := range s.topics {
		if len(st.parts) > 0 {
			kept = append(kept, st)
		}
	}
	clear(s.topics[len(kept):])
	s.topics = kept
}

func (s *fetchSession) topic(key fetchTopicKey, create bool) *sessionTopic {
	for _, st := range s.topics {
		if st.key == key {
			return st
		}
	}
	if !create {
		return nil
	}
	st := &sessionTopic{key: key}
	s.topics = append(s.topics, st)
	return st
}

// record notes what the response says of a partition of the session and reports whether an
// incremental response must carry it (Kafka's CachedPartition.maybeUpdateResponseData, with
// the last stable offset compared too).
func (s *fetchSession) record(sp *sessionPart, fp *fetchPart) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	must := fp.rr != nil && fp.rr.Bytes > 0
	if fp.errCode != 0 {
		sp.hwm, sp.lso, sp.logStart = -1, -1, -1
		return true
	}
	if sp.hwm != fp.hwm || sp.lso != fp.lso || sp.logStart != fp.logStart {
		sp.hwm, sp.lso, sp.logStart = fp.hwm, fp.lso, fp.logStart
		must = true
	}
	return must
}

// rotate moves the partitions that returned records to the end of their topic, and their
// topics to the end of the session, so that the next incremental fetch reads the others first
// and a busy partition cannot starve the rest of the response's byte budget: in a session the
// client no longer orders partitions itself (Kafka moves such partitions to the end of the
// session in the same way).
func (s *fetchSession) rotate(sent map[*sessionPart]bool) {
	if len(sent) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var quiet, busy []*sessionTopic
	for _, st := range s.topics {
		var keep, moved []*sessionPart
		for _, sp := range st.parts {
			if sent[sp] {
				moved = append(moved, sp)
			} else {
				keep = append(keep, sp)
			}
		}
		if len(moved) == 0 {
			quiet = append(quiet, st)
			continue
		}
		st.parts = append(keep, moved...)
		busy = append(busy, st)
	}
	s.topics = append(quiet, busy...)
}
