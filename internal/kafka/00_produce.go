package kafka

// Produce, versions 3-13 served; 0-2 are advertised (librdkafka turns compression off unless
// the minimum is 0) and answered with UNSUPPORTED_VERSION. acks 0 (no response), 1 and -1
// (all). On one node "all replicas" is this node, so acks 1 and all are both answered once the
// batch is durable per the sync policy (fsync before the acknowledgement by default). On a
// cluster node a replicated partition answers once the batch is committed by a majority of
// its replicas, and refuses acks=all with NOT_ENOUGH_REPLICAS while fewer than
// min.insync.replicas are in sync.
//
// The handler appends in the reader goroutine, in request order; the durability wait runs in
// the writer goroutine, so consecutive requests on a connection (and concurrent connections)
// share fsyncs. On a replicated partition the reader likewise only proposes the batch to the
// partition's Raft group and moves on to the next request; the writer waits for the commit
// (pipelining: a client's requests in flight share the group's rounds), and answers stay in
// request order. Until it is answered such a request keeps its memory reserved from the
// server's request budget (queued.max.request.bytes): its batch waits in the group's log.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/txn"
)

// appended is a partition written by a produce request, to wait for before answering: its
// durability on one node, its commit on a replicated partition (pending).
type appended struct {
	p          *stream.Partition
	lastOffset int64
	resp       *kmsg.ProduceResponseTopicPartition
	pending    *stream.PendingAppend // a batch proposed to the partition's group
	bytes      int64                 // the pending batch's size, counted once committed
}

// produceWait is what a Produce request waits for in the writer's turn before its answer.
type produceWait struct {
	rc      *reqCtx
	resp    *kmsg.ProduceResponse
	waits   []appended
	timeout time.Duration
	acksAll bool
	hints   bool           // the response carries NodeEndpoints (v10+)
	hinted  map[int32]bool // leaders named in NOT_LEADER_OR_FOLLOWER answers (KIP-951)
}

func handleProduce(rc *reqCtx, req *kmsg.ProduceRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var failAll *kerr.Error
	var failMsg string
	switch {
	case req.Version < 3:
		failAll, failMsg = kerr.UnsupportedVersion, "Produce versions 0-2 (message formats v0/v1) are not supported; use v3 or later"
	case req.TransactionID != nil && !rc.authorizedTxn(kmsg.ACLOperationWrite, *req.TransactionID):
		failAll, failMsg = kerr.TransactionalIDAuthorizationFailed, "not authorized to write with this transactional id"
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		failAll, failMsg = kerr.InvalidRequiredAcks, "acks must be 0, 1 or -1"
	}
	pw := &produceWait{rc: rc, resp: resp, timeout: time.Duration(req.TimeoutMillis) * time.Millisecond,
		acksAll: req.Acks == -1, hints: req.Version >= 10, hinted: map[int32]bool{}}
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		t, topicErr := rc.produceTopic(req.Version, rt)
		if topicErr == nil && !rc.authorizedTopic(kmsg.ACLOperationWrite, t.Name) {
			t, topicErr = nil, kerr.TopicAuthorizationFailed
		}
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			switch {
			case failAll != nil:
				sp.ErrorCode, sp.ErrorMessage = failAll.Code, &failMsg
			case topicErr != nil:
				sp.ErrorCode = topicErr.Code
			default:
				pw.produce(t, rp, sp, req.Version >= 12)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	replicated := false
	for _, w := range pw.waits {
		if w.pending != nil {
			// Its batches wait in their groups' logs until answered: the request keeps its
			// memory reserved until then, which bounds what a connection's pipelined
			// requests (and all connections') hold.
			rc.c.holdRequestMemory = true
			replicated = true
			break
		}
	}
	if req.Acks == 0 {
		// The client expects no response at all, but the records must still become durable:
		// under SyncAlways readers only see durable data, and nothing else may ask for the
		// fsync. The wait runs in the writer's turn (bounded by its queue), writes nothing, and
		// is tied to the server, not the connection, which a fire-and-forget client may close
		// at once.
		return silentReply(func() { pw.wait(rc.s.ctx) }), nil
	}
	// A commit is a Raft round trip (the leader's and a follower's WAL fsyncs), not one shared
	// fsync: the answers written ahead of this one go out before the writer waits for it
	// (fsyncWait false), else a client keeping requests in flight would get them only once the
	// connection's queue of requests ran empty.
	return &kmsgReply{resp: resp, before: func() { pw.wait(rc.c.ctx) }, fsyncWait: !replicated}, nil
}

// produce appends (or proposes) one partition's batch of a request, in the reader's turn.
func (pw *produceWait) produce(t *stream.Topic, rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition, txnV2 bool) {
	rc := pw.rc
	p := t.Partition(rp.Partition)
	if p == nil {
		var h leaderHint
		sp.ErrorCode, h = rc.s.absent(t, rp.Partition)
		pw.hint(sp, h)
		return
	}
	var err error
	if pw.acksAll {
		err = p.CheckInSync() // min.insync.replicas, on a replicated partition
	}
	var (
		res     stream.AppendResult
		pending *stream.PendingAppend
	)
	if err == nil {
		res, pending, err = rc.appendBatch(p, rp.Records, txnV2, pw.timeout)
	}
	if err == nil && pending != nil {
		pw.waits = append(pw.waits, appended{p: p, resp: sp, pending: pending, bytes: int64(len(rp.Records))})
		return
	}
	if err == nil && pw.acksAll {
		err = pw.checkInSyncAfter(p)
	}
	if err != nil {
		pw.fail(p, sp, err)
		return
	}
	sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
	if o := rc.s.cfg.TopicObserver; o != nil && !res.Duplicate {
		o.ObserveProduce(t.Name, int64(len(rp.Records)), res.LastOffset-res.BaseOffset+1)
	}
	pw.waits = append(pw.waits, appended{p: p, lastOffset: res.LastOffset, resp: sp})
}

// checkInSyncAfter: committed, but the in-sync replicas fell below min.insync.replicas while
// it waited: Kafka's leader answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (the batch is written; a
// retry may duplicate it unless the producer is idempotent).
func (pw *produceWait) checkInSyncAfter(p *stream.Partition) error {
	if cerr := p.CheckInSync(); cerr != nil {
		return &kerrWithMsg{kerr.NotEnoughReplicasAfterAppend.Code, cerr.Error()}
	}
	return nil
}

// fail answers a partition with err's code, naming its leader if this node is not it.
func (pw *produceWait) fail(p *stream.Partition, sp *kmsg.ProduceResponseTopicPartition, err error) {
	sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
	sp.BaseOffset = -1
	if sp.ErrorCode == kerr.NotLeaderForPartition.Code {
		_, h := pw.rc.s.notLeader(p)
		pw.hint(sp, h)
	}
	pw.rc.logProduceError(p.Topic.Name, p.Index, sp.ErrorCode, err)
}

// hint names the partition's leader in a NOT_LEADER_OR_FOLLOWER answer (v10+).
func (pw *produceWait) hint(sp *kmsg.ProduceResponseTopicPartition, h leaderHint) {
	if h.id >= 0 && pw.hints {
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.id, h.epoch
		pw.hinted[h.id] = true
	}
}

// wait runs in the writer's turn: the commits of the batches proposed to replicated
// partitions (in turn: they were all proposed already, so the total wait is the longest),
// then the durability of the ones appended on this node, then the leaders' endpoints.
func (pw *produceWait) wait(ctx context.Context) {
	local := pw.waits[:0:0]
	for _, w := range pw.waits {
		if w.pending == nil {
			local = append(local, w)
			continue
		}
		res, err := w.pending.Wait(ctx)
		if err == nil && pw.acksAll {
			err = pw.checkInSyncAfter(w.p)
		}
		if err != nil {
			pw.fail(w.p, w.resp, err)
			continue
		}
		w.resp.BaseOffset, w.resp.LogAppendTime, w.resp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
		if o := pw.rc.s.cfg.TopicObserver; o != nil && !res.Duplicate {
			o.ObserveProduce(w.p.Topic.Name, w.bytes, res.LastOffset-res.BaseOffset+1)
		}
	}
	pw.rc.waitDurable(ctx, local, pw.timeout)
	for _, b := range pw.rc.s.endpoints(pw.hinted) {
		kb := kmsg.NewProduceResponseBroker()
		kb.NodeID, kb.Host, kb.Port = b.ID, b.Host, b.Port
		pw.resp.Brokers = append(pw.resp.Brokers, kb)
	}
}

// appendBatch appends a produced batch; a transactional one only if the producer's
// transaction is ongoing and holds the partition (else INVALID_TXN_STATE, or
// INVALID_PRODUCER_EPOCH for a fenced producer), checked and appended as one step with
// respect to the transaction's end (txn.Coordinator.Produce). txnV2 (Produce v12+) adds the
// partition to the transaction if it is not in it yet, under transaction version 2 (KIP-890).
//
// On a replicated partition a batch outside a transaction is only proposed: the returned
// PendingAppend's Wait gives its result, once committed or after timeout (the request's
// timeout): REQUEST_TIMED_OUT, as Kafka's leader answers when its followers do not catch up
// in time. A transactional batch is appended and waited for here, within the transaction's
// step.
func (rc *reqCtx) appendBatch(p *stream.Partition, batch []byte, txnV2 bool, timeout time.Duration) (stream.AppendResult, *stream.PendingAppend, error) {
	if len(batch) < rb.HeaderLen || batch[rb.OffMagic] != rb.MagicV2 {
		return p.AppendAsync(batch, timeout) // refused there
	}
	h, err := rb.ParseHeader(batch)
	if err != nil || !h.Transactional() || h.Control() {
		return p.AppendAsync(batch, timeout)
	}
	if rc.txn() == nil {
		return stream.AppendResult{}, nil, &kerrWithMsg{kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not served"}
	}
	var res stream.AppendResult
	err = rc.txn().Produce(h.ProducerID, h.ProducerEpoch, txn.TopicPartition{Topic: p.Topic.Name, Partition: p.Index}, txnV2, func() error {
		var err error
		res, err = p.AppendWithin(batch, timeout)
		return err
	})
	if err != nil && !errors.Is(err, stream.ErrInvalidRecord) {
		if code := txnErrorCode(err); code != errorCode(err) {
			return res, nil, &kerrWithMsg{code, err.Error()}
		}
	}
	return res, nil, err
}

// logProduceError logs a refused produce: storage errors (the operator's business: a full
// disk, a failed fsync) as rate-limited warnings, the rest (the client's) at debug level.
func (rc *reqCtx) logProduceError(topic string, partition int32, code int16, err error) {
	if code == kerr.KafkaStorageError.Code {
		rc.s.rl.Warn("kafka storage error", "cannot append to a partition: storage error", "topic", topic, "partition", partition, "err", err)
		return
	}
	rc.c.log.Debug("produce refused", "topic", topic, "partition", partition, "err", err)
}

// silentReply completes work in request order without writing a response. The writer runs
// it even when it can no longer write (see writeLoop).
type silentReply func()

func (r silentReply) writeTo(*conn, *reqHeader) error {
	r()
	return nil
}

// produceTopic resolves a produce request's topic by name (v3-12) or ID (v13+).
func (rc *reqCtx) produceTopic(version int16, rt *kmsg.ProduceRequestTopic) (*stream.Topic, *kerr.Error) {
	if version >= 13 {
		if t, ok := rc.s.st.TopicByID(catalog.UUID(rt.TopicID)); ok {
			return t, nil
		}
		return nil, kerr.UnknownTopicID
	}
	if t, ok := rc.s.st.Topic(rt.Topic); ok {
		return t, nil
	}
	return nil, kerr.UnknownTopicOrPartition
}

// waitDurable waits for every appended partition (concurrently: each partition is its own log
// and its own fsync) and turns failures into per-partition errors.
func (rc *reqCtx) waitDurable(ctx context.Context, waits []appended, timeout time.Duration) {
	if len(waits) == 0 {
		return
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	wait := func(w appended) {
		if err := w.p.WaitDurable(ctx, w.lastOffset); err != nil {
			w.resp.ErrorCode, w.resp.ErrorMessage = errorCode(err), errorMessage(err)
			w.resp.BaseOffset = -1
			rc.logProduceError(w.p.Topic.Name, w.resp.Partition, w.resp.ErrorCode, err)
		}
	}
	if len(waits) == 1 || waits[0].p.Journaled() {
		// Journaled partitions share one journal group commit: the first wait covers (nearly)
		// all of them, so waiting in turn costs no time and no goroutines.
		for _, w := range waits {
			wait(w)
		}
		return
	}
	var wg sync.WaitGroup
	for _, w := range waits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wait(w)
		}()
	}
	wg.Wait()
}
