package kafka

// InitProducerId, versions 0-5. Without a transactional ID (idempotent producers) every call
// gets a fresh producer ID with epoch 0, as Kafka does (IDs come from durable blocks in the
// catalog, so they are never reused). With one, the transaction coordinator (internal/txn)
// answers: the ID's producer ID with a bumped epoch, which fences older instances (their
// open transaction is aborted); v3+ callers recovering from an error pass their producer ID
// and epoch (KIP-360) and keep their producer ID unless another instance took over
// (PRODUCER_FENCED).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(rc *reqCtx, req *kmsg.InitProducerIDRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" && !rc.authorizedTxn(kmsg.ACLOperationWrite, *req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp), nil
	}
	// An idempotent producer needs IdempotentWrite on the cluster or, as Kafka 2.8+,
	// Write on some topic.
	if (req.TransactionalID == nil || *req.TransactionalID == "") && !rc.authorizedCluster(kmsg.ACLOperationIdempotentWrite) &&
		!rc.authorizedAny(kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp), nil
	}
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		if rc.txn() == nil {
			resp.ErrorCode = errNoTxnCoordinator
			return respond(resp), nil
		}
		pid, epoch := int64(-1), int16(-1)
		if req.Version >= 3 {
			pid, epoch = req.ProducerID, req.ProducerEpoch
		}
		id, ep, err := rc.txn().InitProducerID(*req.TransactionalID, req.TransactionTimeoutMillis, pid, epoch)
		resp.ErrorCode = txnErrorCode(err)
		if err == nil {
			resp.ProducerID, resp.ProducerEpoch = id, ep
		} else {
			rc.c.log.Debug("InitProducerId refused", "transactional_id", *req.TransactionalID, "err", err)
		}
		return respond(resp), nil
	}
	id, err := rc.s.st.AllocateProducerID()
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return respond(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return respond(resp), nil
}
