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
// share fsyncs.

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

// appended is a partition written by a produce request, to wait for before answering.
type appended struct {
	p          *stream.Partition
	lastOffset int64
	resp       *kmsg.ProduceResponseTopicPartition
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
	var waits []appended
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	hinted := map[int32]bool{} // leaders named in NOT_LEADER_OR_FOLLOWER answers (KIP-951)
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
				continue
			case topicErr != nil:
				sp.ErrorCode = topicErr.Code
				continue
			}
			p := t.Partition(rp.Partition)
			if p == nil {
				var h leaderHint
				sp.ErrorCode, h = rc.s.absent(t, rp.Partition)
				if h.id >= 0 && req.Version >= 10 {
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.id, h.epoch
					hinted[h.id] = true
				}
				continue
			}
			var (
				res stream.AppendResult
				err error
			)
			if req.Acks == -1 {
				err = p.CheckInSync() // min.insync.replicas, on a replicated partition
			}
			if err == nil {
				res, err = rc.appendBatch(p, rp.Records, req.Version >= 12, timeout)
			}
			if err == nil && req.Acks == -1 {
				// Committed, but the in-sync replicas fell below min.insync.replicas while it
				// waited: Kafka's leader answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (the batch
				// is written; a retry may duplicate it unless the producer is idempotent).
				if cerr := p.CheckInSync(); cerr != nil {
					err = &kerrWithMsg{kerr.NotEnoughReplicasAfterAppend.Code, cerr.Error()}
				}
			}
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				if sp.ErrorCode == kerr.NotLeaderForPartition.Code && req.Version >= 10 {
					if _, h := rc.s.notLeader(p); h.id >= 0 {
						sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.id, h.epoch
						hinted[h.id] = true
					}
				}
				rc.logProduceError(t.Name, rp.Partition, sp.ErrorCode, err)
				continue
			}
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = res.BaseOffset, res.LogAppendTime, res.LogStartOffset
			if o := rc.s.cfg.TopicObserver; o != nil && !res.Duplicate {
				o.ObserveProduce(t.Name, int64(len(rp.Records)), res.LastOffset-res.BaseOffset+1)
			}
			waits = append(waits, appended{p, res.LastOffset, sp})
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, b := range rc.s.endpoints(hinted) {
		kb := kmsg.NewProduceResponseBroker()
		kb.NodeID, kb.Host, kb.Port = b.ID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, kb)
	}
	if req.Acks == 0 {
		// The client expects no response at all, but the records must still become durable:
		// under SyncAlways readers only see durable data, and nothing else may ask for the
		// fsync. The wait runs in the writer's turn (bounded by its queue), writes nothing, and
		// is tied to the server, not the connection, which a fire-and-forget client may close
		// at once.
		return silentReply(func() { rc.waitDurable(rc.s.ctx, waits, timeout) }), nil
	}
	return &kmsgReply{resp: resp, before: func() { rc.waitDurable(rc.c.ctx, waits, timeout) }, fsyncWait: true}, nil
}

// appendBatch appends a produced batch; a transactional one only if the producer's
// transaction is ongoing and holds the partition (else INVALID_TXN_STATE, or
// INVALID_PRODUCER_EPOCH for a fenced producer), checked and appended as one step with
// respect to the transaction's end (txn.Coordinator.Produce). txnV2 (Produce v12+) adds the
// partition to the transaction if it is not in it yet, under transaction version 2 (KIP-890).
//
// On a replicated partition the wait for the batch's commit ends after timeout (the request's
// timeout): REQUEST_TIMED_OUT, as Kafka's leader answers when its followers do not catch up
// in time.
func (rc *reqCtx) appendBatch(p *stream.Partition, batch []byte, txnV2 bool, timeout time.Duration) (stream.AppendResult, error) {
	if len(batch) < rb.HeaderLen || batch[rb.OffMagic] != rb.MagicV2 {
		return p.AppendWithin(batch, timeout) // refused there
	}
	h, err := rb.ParseHeader(batch)
	if err != nil || !h.Transactional() || h.Control() {
		return p.AppendWithin(batch, timeout)
	}
	if rc.txn() == nil {
		return stream.AppendResult{}, &kerrWithMsg{kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not served"}
	}
	var res stream.AppendResult
	err = rc.txn().Produce(h.ProducerID, h.ProducerEpoch, txn.TopicPartition{Topic: p.Topic.Name, Partition: p.Index}, txnV2, func() error {
		var err error
		res, err = p.AppendWithin(batch, timeout)
		return err
	})
	if err != nil && !errors.Is(err, stream.ErrInvalidRecord) {
		if code := txnErrorCode(err); code != errorCode(err) {
			return res, &kerrWithMsg{code, err.Error()}
		}
	}
	return res, err
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
