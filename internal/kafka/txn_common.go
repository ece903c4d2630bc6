package kafka

// What the transaction APIs (22, 24-26, 28, 65, 66) share: the coordinator and its errors.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/yardmq/yard/internal/txn"
)

func (rc *reqCtx) txn() txn.Service { return rc.s.cfg.Txn }

var txnErrorTable = []struct {
	err  error
	kerr *kerr.Error
}{
	{txn.ErrNotCoordinator, kerr.NotCoordinator}, // before ErrCoordinatorUnavailable: a failed state write wraps both
	{txn.ErrCoordinatorLoadInProgress, kerr.CoordinatorLoadInProgress},
	{txn.ErrInvalidTimeout, kerr.InvalidTransactionTimeout},
	{txn.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{txn.ErrProducerFenced, kerr.ProducerFenced},
	{txn.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{txn.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{txn.ErrInvalidTxnState, kerr.InvalidTxnState},
	{txn.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{txn.ErrNotAttempted, kerr.OperationNotAttempted},
	{txn.ErrTransactionalIDNotFound, kerr.TransactionalIDNotFound},
	{txn.ErrInvalidTransactionalID, kerr.InvalidRequest},
	{txn.ErrCoordinatorUnavailable, kerr.CoordinatorNotAvailable},
}

// txnErrorCode is the Kafka code of a transaction coordinator error (0 for nil).
func txnErrorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range txnErrorTable {
		if errors.Is(err, e.err) {
			return e.kerr.Code
		}
	}
	return errorCode(err)
}

// errNoTxnCoordinator answers transaction APIs when the server has no coordinator (Config.Txn
// nil): TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka answers a client not permitted to use
// a transactional ID, a fatal error on which clients fail at once (COORDINATOR_NOT_AVAILABLE
// would be retried until the client's timeout).
var errNoTxnCoordinator = kerr.TransactionalIDAuthorizationFailed.Code
