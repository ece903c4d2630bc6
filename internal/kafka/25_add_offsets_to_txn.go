package kafka

// AddOffsetsToTxn, versions 0-4: the transaction will commit offsets for a consumer group
// (TxnOffsetCommit follows).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(rc *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if rc.txn() == nil || rc.groups() == nil {
		resp.ErrorCode = errNoTxnCoordinator
		return respond(resp), nil
	}
	resp.ErrorCode = txnErrorCode(rc.txn().AddOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
	return respond(resp), nil
}
