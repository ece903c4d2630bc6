package kafka

// Transactions are not served (issue 3 scope). Their APIs are registered so that a
// transactional client gets a clear, immediate answer instead of a hang or a dropped
// connection: TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere, as InitProducerId answers a
// transactional ID. Served: AddPartitionsToTxn 0-5 (24), AddOffsetsToTxn 0-4 (25),
// EndTxn 0-5 (26), TxnOffsetCommit 0-5 (28).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errNoTxn = kerr.TransactionalIDAuthorizationFailed.Code

func handleAddPartitionsToTxn(rc *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		resp.ErrorCode = errNoTxn
		return respond(resp), nil
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, errNoTxn
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}

func handleAddOffsetsToTxn(rc *reqCtx, req *kmsg.AddOffsetsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	resp.ErrorCode = errNoTxn
	return respond(resp), nil
}

func handleEndTxn(rc *reqCtx, req *kmsg.EndTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ErrorCode = errNoTxn
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	return respond(resp), nil
}

func handleTxnOffsetCommit(rc *reqCtx, req *kmsg.TxnOffsetCommitRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p.Partition, errNoTxn
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
