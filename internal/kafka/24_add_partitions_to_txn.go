package kafka

// AddPartitionsToTxn, versions 0-5. v0-3 (clients): one transaction, its partitions added;
// v4+ (batched, KIP-890; Kafka's brokers send it to verify): several transactions, each with
// VerifyOnly or not, a top-level error for the request. Errors of a transaction as a whole
// (fenced producer, wrong producer ID, concurrent completion) are given on every partition,
// as Kafka does.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/txn"
)

func handleAddPartitionsToTxn(rc *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		if rc.txn() == nil {
			resp.ErrorCode = errNoTxnCoordinator
			return respond(resp), nil
		}
		for _, t := range req.Transactions {
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = t.TransactionalID
			var tps []txn.TopicPartition
			for _, tt := range t.Topics {
				for _, p := range tt.Partitions {
					tps = append(tps, txn.TopicPartition{Topic: tt.Topic, Partition: p})
				}
			}
			out, err := rc.txn().AddPartitions(t.TransactionalID, t.ProducerID, t.ProducerEpoch, tps, t.VerifyOnly)
			for _, tt := range t.Topics {
				st := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				st.Topic = tt.Topic
				for _, p := range tt.Partitions {
					sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					sp.Partition = p
					if err != nil {
						sp.ErrorCode = txnErrorCode(err)
					} else {
						sp.ErrorCode = txnErrorCode(out[txn.TopicPartition{Topic: tt.Topic, Partition: p}])
					}
					st.Partitions = append(st.Partitions, sp)
				}
				rt.Topics = append(rt.Topics, st)
			}
			resp.Transactions = append(resp.Transactions, rt)
		}
		return respond(resp), nil
	}
	var tps []txn.TopicPartition
	for _, rt := range req.Topics {
		for _, p := range rt.Partitions {
			tps = append(tps, txn.TopicPartition{Topic: rt.Topic, Partition: p})
		}
	}
	var out map[txn.TopicPartition]error
	var err error
	if rc.txn() == nil {
		err = txn.ErrCoordinatorUnavailable
	} else {
		out, err = rc.txn().AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, tps, false)
	}
	for _, rt := range req.Topics {
		st := kmsg.NewAddPartitionsToTxnResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			sp.Partition = p
			if err != nil {
				sp.ErrorCode = txnErrorCode(err)
			} else {
				sp.ErrorCode = txnErrorCode(out[txn.TopicPartition{Topic: rt.Topic, Partition: p}])
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
