package kafka

// DescribeTransactions, version 0 (kafka-transactions.sh describe): state, producer ID and
// epoch, timeout, start time and partitions of each transactional ID asked for;
// TRANSACTIONAL_ID_NOT_FOUND for an unknown one; with an authorizer, each ID needs DESCRIBE on
// it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeTransactions(rc *reqCtx, req *kmsg.DescribeTransactionsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		if !rc.authorizedTxn(kmsg.ACLOperationDescribe, id) {
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		if rc.txn() == nil {
			st.ErrorCode = errNoTxnCoordinator
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		d, err := rc.txn().Describe(id)
		if err != nil {
			st.ErrorCode = txnErrorCode(err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State, st.TimeoutMillis, st.StartTimestamp = d.State.String(), d.TimeoutMs, d.StartMs
		st.ProducerID, st.ProducerEpoch = d.PID, d.Epoch
		for i := 0; i < len(d.Partitions); {
			t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			t.Topic = d.Partitions[i].Topic
			for ; i < len(d.Partitions) && d.Partitions[i].Topic == t.Topic; i++ {
				t.Partitions = append(t.Partitions, d.Partitions[i].Partition)
			}
			st.Topics = append(st.Topics, t)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return respond(resp), nil
}
