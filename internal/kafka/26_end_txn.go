package kafka

// EndTxn, versions 0-5: commit or abort. The answer comes once the outcome is durable in the
// coordinator's log and, normally, the markers are written to every partition of the
// transaction and its offsets committed (internal/txn). Transaction version 2 (KIP-890 part
// 2: an epoch bump per transaction) is not enabled (the transaction.version feature is not
// advertised), so v5 behaves as v4 and the response carries no new epoch (-1).

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
	err := rc.txn().End(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	resp.ErrorCode = txnErrorCode(err)
	if err != nil {
		rc.c.log.Debug("EndTxn refused", "transactional_id", req.TransactionalID, "commit", req.Commit, "err", err)
	}
	return respond(resp), nil
}
