package kafka

// AddOffsetsToTxn, versions 0-4: the transaction will commit offsets for a consumer group
// (TxnOffsetCommit follows).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAddOffsetsToTxn(rc *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !rc.authorizedTxn(kmsg.ACLOperationWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return respond(resp), nil
	case !rc.authorizedGroup(kmsg.ACLOperationRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return respond(resp), nil
	}
	if rc.txn() == nil || rc.groups() == nil {
		resp.ErrorCode = errNoTxnCoordinator
		return respond(resp), nil
	}
	resp.ErrorCode = txnErrorCode(rc.txn().AddOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group))
	return respond(resp), nil
}
