package kafka

// AddPartitionsToTxn, versions 0-5. v0-3 (clients): one transaction, its partitions added;
// v4+ (batched, KIP-890; Kafka's brokers send it to verify): several transactions, each with
// VerifyOnly or not, a top-level error for the request. Errors of a transaction as a whole
// (fenced producer, wrong producer ID, concurrent completion) are given on every partition,
// as Kafka does.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/txn"
)

func handleAddPartitionsToTxn(rc *reqCtx, req *kmsg.AddPartitionsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		// v4+ is the brokers' own (KIP-890 verification): ClusterAction, as Kafka.
		if !rc.authorizedCluster(kmsg.ACLOperationClusterAction) {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return respond(resp), nil
		}
		if rc.txn() == nil {
			resp.ErrorCode = errNoTxnCoordinator
			return respond(resp), nil
		}
		for _, t := range req.Transactions {
			rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rt.TransactionalID = t.TransactionalID
			var tps []txn.TopicPartition
			for _, tt := range t.Topics {
				tps = appendTopicPartitions(tps, tt.Topic, tt.Partitions)
			}
			out, err := rc.txn().AddPartitions(t.TransactionalID, t.ProducerID, t.ProducerEpoch, tps, t.VerifyOnly)
			for _, tt := range t.Topics {
				st := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				st.Topic = tt.Topic
				for _, p := range tt.Partitions {
					sp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					sp.Partition = p
					sp.ErrorCode = addedPartitionCode(err, out, tt.Topic, p)
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
		tps = appendTopicPartitions(tps, rt.Topic, rt.Partitions)
	}
	var out map[txn.TopicPartition]error
	var err error
	// As Kafka: Write on the transactional id, then on every topic; if any topic is denied,
	// its partitions are TOPIC_AUTHORIZATION_FAILED and the others OPERATION_NOT_ATTEMPTED.
	deniedTopic := map[string]bool{}
	for _, rt := range req.Topics {
		if !rc.authorizedTopic(kmsg.ACLOperationWrite, rt.Topic) {
			deniedTopic[rt.Topic] = true
		}
	}
	if !rc.authorizedTxn(kmsg.ACLOperationWrite, req.TransactionalID) {
		err = errTxnAuthorization
	} else if len(deniedTopic) > 0 {
		out = map[txn.TopicPartition]error{}
		for _, tp := range tps {
			out[tp] = errOperationNotAttempted
			if deniedTopic[tp.Topic] {
				out[tp] = errTopicAuthorization
			}
		}
	} else if rc.txn() == nil {
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
			sp.ErrorCode = addedPartitionCode(err, out, rt.Topic, p)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}

// appendTopicPartitions appends topic's partitions to tps (v0-3 and v4+ name them alike).
func appendTopicPartitions(tps []txn.TopicPartition, topic string, partitions []int32) []txn.TopicPartition {
	for _, p := range partitions {
		tps = append(tps, txn.TopicPartition{Topic: topic, Partition: p})
	}
	return tps
}

// addedPartitionCode is a partition's error code in the response: err, the transaction's own
// error, if any (given on every partition, as Kafka does), else the partition's from out.
func addedPartitionCode(err error, out map[txn.TopicPartition]error, topic string, p int32) int16 {
	if err != nil {
		return txnErrorCode(err)
	}
	return txnErrorCode(out[txn.TopicPartition{Topic: topic, Partition: p}])
}
