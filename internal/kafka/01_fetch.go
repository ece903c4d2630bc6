package kafka

// Fetch, versions 4-18. Long poll: the response waits up to MaxWaitMillis until MinBytes of
// records are available, woken by appends (each partition log's Changed channel). Limits:
// PartitionMaxBytes per partition and MaxBytes per response, except that the first batch found
// is always returned whole (KIP-74) so that a batch bigger than the limits cannot stall a
// consumer. Fetch sessions (KIP-227) as Kafka does them: the request's session fields are
// applied when the request is read (fetch_session.go), and an incremental response carries
// only the partitions that changed. Record bytes go from the segment files to the socket with
// sendfile (fetch_writer.go). IsolationLevel read_committed (1) reads below the last stable
// offset only and lists the aborted transactions of the range returned (stream.ReadCommitted).
//
// The handler only records the request; all the work happens in the connection's writer when
// the reply's turn comes (fetchReply.writeTo), so that the data read is as fresh as possible
// and a long poll delays only the replies behind it on the same connection.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

func handleFetch(rc *reqCtx, req *kmsg.FetchRequest) (reply, error) {
	r := &fetchReply{rc: rc, req: req}
	if rc.s.cfg.Authorizer != nil && (req.Version < 15 && req.ReplicaID >= 0 || req.Version >= 15 && req.ReplicaState.ID >= 0) {
		// Decided here, on the reader goroutine, where the connection's principal lives.
		if !rc.authorizedCluster(kmsg.ACLOperationClusterAction) {
			r.clusterDenied = true
		}
		return r, nil
	}
	// The session is applied in request order, before the next request on the connection.
	r.fc = rc.s.fetchSessions.newContext(req)
	if rc.s.cfg.Authorizer == nil {
		return r, nil
	}
	r.deniedTopics = make([]bool, len(r.fc.topics))
	for i := range r.fc.topics {
		wt := &r.fc.topics[i]
		name := wt.name
		if req.Version >= 13 {
			t, ok := rc.s.st.TopicByID(catalog.UUID(wt.id))
			if !ok {
				continue // answered UNKNOWN_TOPIC_ID
			}
			name = t.Name
		}
		r.deniedTopics[i] = !rc.authorizedTopic(kmsg.ACLOperationRead, name)
	}
	return r, nil
}

type fetchReply struct {
	rc  *reqCtx
	req *kmsg.FetchRequest
	// clusterDenied: a follower fetch without ClusterAction; deniedTopics[i]: no Read on
	// the request's i-th topic (nil: no authorizer).
	clusterDenied bool
	deniedTopics  []bool // by index in fc.topics
	fc            *fetchContext
}

// fetchTarget is one requested partition, resolved.
type fetchTarget struct {
	p        *stream.Partition // nil when the partition's error is known up front
	offset   int64
	maxBytes int32
	out      *fetchPart
	sp       *sessionPart // in a fetch session
}

func (r *fetchReply) writeTo(c *conn, hdr *reqHeader) error {
	req := r.req
	plan := &fetchPlan{version: req.Version}
	if r.clusterDenied {
		plan.errCode = kerr.ClusterAuthorizationFailed.Code
		return plan.write(c, hdr)
	}
	if r.fc.errCode != 0 {
		plan.errCode = r.fc.errCode
		return plan.write(c, hdr)
	}
	plan.sessionID = r.fc.sessionID
	targets := r.resolve(plan)
	deadline := time.Now().Add(min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxFetchMaxWait))
	var changes stream.Changes
	for {
		// Take the change channels before reading, so that an append landing between the read
		// and the wait still wakes us.
		changes.Reset()
		for _, t := range targets {
			if t.p != nil {
				changes.Add(t.p)
			}
		}
		total, anyErr := r.gather(targets, req.MaxBytes)
		if total >= int64(req.MinBytes) || anyErr || !time.Now().Before(deadline) {
			break
		}
		// Not enough yet: release what was read and wait for an append to any partition.
		for _, t := range targets {
			t.out.release()
		}
		if err := c.flushBeforeWait(); err != nil {
			return err
		}
		timer := time.NewTimer(time.Until(deadline))
		stopped := changes.Wait(c.ctx.Done(), timer.C)
		timer.Stop()
		if stopped {
			return c.ctx.Err()
		}
		// Re-check the condition after a wake-up or at the deadline (then respond anyway).
	}
	defer plan.release()
	if s := r.fc.session; s != nil {
		r.recordSession(plan, targets)
	}
	if err := plan.write(c, hdr); err != nil {
		return err
	}
	if o := c.s.cfg.TopicObserver; o != nil {
		plan.observe(o)
	}
	return nil
}

// observe tells o the record bytes the response sent, per topic.
func (p *fetchPlan) observe(o TopicObserver) {
	for i := range p.topics {
		var n int64
		for j := range p.topics[i].parts {
			if rr := p.topics[i].parts[j].rr; rr != nil {
				n += rr.Bytes
			}
		}
		if n > 0 {
			o.ObserveFetch(p.topics[i].topic, n)
		}
	}
}

// recordSession notes in the session what the response says of each partition and, for an
// incremental fetch, leaves out the partitions that did not change.
func (r *fetchReply) recordSession(plan *fetchPlan, targets []*fetchTarget) {
	k := 0
	var sent map[*sessionPart]bool
	for i := range plan.topics {
		ft := &plan.topics[i]
		parts := ft.parts[:0]
		for j := range ft.parts {
			tg := targets[k]
			k++
			if ft.parts[j].rr != nil && tg.sp != nil {
				if sent == nil {
					sent = map[*sessionPart]bool{}
				}
				sent[tg.sp] = true
			}
			if !r.fc.session.record(tg.sp, &ft.parts[j]) && r.fc.incremental {
				ft.parts[j].release()
				continue
			}
			parts = append(parts, ft.parts[j])
		}
		ft.parts = parts
	}
	r.fc.session.rotate(sent)
	if r.fc.incremental {
		topics := plan.topics[:0]
		for _, ft := range plan.topics {
			if len(ft.parts) > 0 {
				topics = append(topics, ft)
			}
		}
		plan.topics = topics
	}
}

// resolve builds the response skeleton and the list of partitions to read, in response order.
func (r *fetchReply) resolve(plan *fetchPlan) []*fetchTarget {
	st := r.rc.s.st
	var targets []*fetchTarget
	hinted := map[int32]bool{} // leaders named in NOT_LEADER_OR_FOLLOWER answers (KIP-951)
	wants := r.fc.topics
	plan.topics = make([]fetchTopic, len(wants))
	for i := range wants {
		wt := &wants[i]
		ft := &plan.topics[i]
		ft.name, ft.id = wt.name, wt.id
		var t *stream.Topic
		var ok bool
		topicErr := kerr.UnknownTopicOrPartition.Code
		if r.req.Version >= 13 {
			t, ok = st.TopicByID(catalog.UUID(wt.id))
			topicErr = kerr.UnknownTopicID.Code
		} else {
			t, ok = st.Topic(wt.name)
		}
		if ok {
			ft.topic = t.Name // for metrics: v13+ names the topic by ID only
		}
		ft.parts = make([]fetchPart, len(wt.parts))
		for j := range wt.parts {
			wp := &wt.parts[j]
			fp := &ft.parts[j]
			*fp = fetchPart{partition: wp.partition, hwm: -1, lso: -1, logStart: -1}
			tg := &fetchTarget{offset: wp.fetchOffset, maxBytes: wp.maxBytes, out: fp, sp: wp.sp}
			var p *stream.Partition
			if ok {
				p = t.Partition(wp.partition)
			}
			switch {
			case r.deniedTopics != nil && r.deniedTopics[i]:
				fp.errCode = kerr.TopicAuthorizationFailed.Code
			case !ok:
				fp.errCode = topicErr
			case p == nil:
				var h leaderHint
				if fp.errCode, h = r.rc.s.absent(t, wp.partition); h.id >= 0 {
					fp.leader = &h
					hinted[h.id] = true
				}
			default:
				fp.errCode = leaderEpochCode(p, wp.leaderEpoch)
				if fp.errCode == 0 {
					var h leaderHint
					if fp.errCode, h = r.rc.s.notLeader(p); fp.errCode != 0 && h.id >= 0 {
						fp.leader = &h
						hinted[h.id] = true
					}
				}
				if fp.errCode == 0 {
					tg.p = p
				}
			}
			targets = append(targets, tg)
		}
	}
	plan.brokers = r.rc.s.endpoints(hinted)
	return targets
}

// gather reads every partition once, honouring the byte limits. It returns the record bytes
// read and whether some partition has an error (which ends the long poll at once, as in Kafka).
func (r *fetchReply) gather(targets []*fetchTarget, maxResponseBytes int32) (int64, bool) {
	var total int64
	anyErr := false
	budget := int64(maxResponseBytes)
	for _, tg := range targets {
		fp := tg.out
		if tg.p == nil {
			anyErr = anyErr || fp.errCode != 0
			continue
		}
		p := tg.p
		fp.errCode = 0
		var rr *log.ReadResult
		var err error
		limit := min(int64(tg.maxBytes), budget)
		committed := r.req.IsolationLevel == 1
		lso := int64(-1)
		fp.committed, fp.aborted = committed, nil
		if committed {
			if limit > 0 || total == 0 {
				rr, lso, fp.aborted, err = p.ReadCommitted(tg.offset, int(max(limit, 1)))
			} else {
				lso = p.LastStableOffset()
			}
		} else if limit > 0 || total == 0 {
			rr, err = p.Read(tg.offset, int(max(limit, 1)))
		}
		// The high watermark is read after the data so that it is never below what we return.
		hwm := p.HighWatermark()
		if lso < 0 {
			lso = p.LastStableOffset()
		}
		fp.hwm, fp.lso, fp.logStart = hwm, min(lso, hwm), p.StartOffset()
		if err != nil {
			fp.errCode = errorCode(err)
			if errors.Is(err, log.ErrOffsetOutOfRange) && tg.offset > hwm && !r.rc.s.st.Node().LeaderReady(p) {
				// A new leader still applying what its predecessor acknowledged: the
				// offset may well exist; the client retries (KIP-207's answer).
				fp.errCode = kerr.OffsetNotAvailable.Code
			}
			if !errors.Is(err, log.ErrOffsetOutOfRange) && !errors.Is(err, log.ErrClosed) {
				r.rc.s.rl.Warn("fetch read failed", "fetch read failed", "topic", tg.p.Topic.Name, "partition", tg.p.Index, "err", err)
			}
			anyErr = true
			continue
		}
		if rr == nil {
			continue
		}
		// Only the first data returned may exceed the limits (KIP-74).
		if total > 0 && rr.Bytes > limit {
			rr.Release()
			continue
		}
		fp.rr = rr
		total += rr.Bytes
		budget -= rr.Bytes
	}
	return total, anyErr
}
