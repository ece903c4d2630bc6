package kafka

// EndTxn, versions 0-5: commit or abort. The answer comes once the outcome is durable in the
// coordinator's log and, normally, the markers are written to every partition of the
// transaction and its offsets committed (internal/txn). v5 under transaction version 2
// (KIP-890 part 2, the transaction.version feature finalized at 2 in ApiVersions) bumps the
// producer epoch: the markers carry the new one and the response gives the producer its new
// ID and epoch (a retry gets them again); v0-4, or v5 with the feature below 2, keep the epoch
// and answer -1.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleEndTxn(rc *reqCtx, req *kmsg.EndTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !rc.authorizedTxn(kmsg.ACLOperationWrite, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.txn() == nil {
		resp.ErrorCode = errNoTxnCoordinator
		return respond(resp), nil
	}
	pid, epoch, err := rc.txn().End(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	resp.ErrorCode = txnErrorCode(err)
	if err == nil {
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
	} else {
		rc.c.log.Debug("EndTxn refused", "transactional_id", req.TransactionalID, "commit", req.Commit, "err", err)
	}
	return respond(resp), nil
}
