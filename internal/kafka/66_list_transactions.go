package kafka

// ListTransactions, versions 0-1 (kafka-transactions.sh list): every transactional ID, with
// the state and producer ID filters and (v1) the minimum duration of its open transaction.
// An unknown state in the filter is listed in UnknownStateFilters, as Kafka does.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/txn"
)

func handleListTransactions(rc *reqCtx, req *kmsg.ListTransactionsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	if rc.txn() == nil {
		resp.ErrorCode = errNoTxnCoordinator
		return respond(resp), nil
	}
	var states []txn.State
	for _, name := range req.StateFilters {
		if s, ok := txn.ParseState(name); ok {
			states = append(states, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return respond(resp), nil // only unknown states: nothing matches
	}
	minDuration := int64(-1)
	if req.Version >= 1 {
		minDuration = req.DurationFilterMillis
	}
	for _, d := range rc.txn().List(states, req.ProducerIDFilters, minDuration) {
		if !rc.authorizedTxn(kmsg.ACLOperationDescribe, d.ID) {
			continue // as Kafka: only the IDs the principal may describe
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = d.ID, d.PID, d.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return respond(resp), nil
}
