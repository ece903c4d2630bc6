package kafka

// InitProducerId, versions 0-5, for idempotent producers: every call gets a fresh producer ID
// with epoch 0, as Kafka does for a producer without a transactional ID (IDs come from durable
// blocks in the catalog, so they are never reused). A transactional ID gets a clear refusal:
// transactions are not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(rc *reqCtx, req *kmsg.InitProducerIDRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		rc.c.log.Info("refused a transactional producer: transactions are not supported", "transactional_id", *req.TransactionalID)
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
