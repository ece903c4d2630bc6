package kafka

import (
	"context"
	"errors"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// errorTable maps core errors to Kafka error codes: the one place where this translation
// lives. The first match wins.
var errorTable = []struct {
	err  error
	kerr *kerr.Error
}{
	{stream.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{log.ErrClosed, kerr.UnknownTopicOrPartition}, // the topic was deleted under the request
	{stream.ErrTopicExists, kerr.TopicAlreadyExists},
	{stream.ErrInvalidTopic, kerr.InvalidTopicException},
	// As Kafka's ReplicaManager: "Cannot append to (delete records of) internal topic".
	{stream.ErrInternalTopic, kerr.InvalidTopicException},
	// Kafka's controller would delete or repartition __consumer_offsets, losing every
	// group's offsets; yard refuses, as Kafka's own kafka-topics tool does.
	{stream.ErrInternalTopicAdmin, kerr.InvalidRequest},
	{stream.ErrInvalidPartitions, kerr.InvalidPartitions},
	{stream.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{stream.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{stream.ErrInvalidConfig, kerr.InvalidConfig},
	{stream.ErrNotReplicated, kerr.PolicyViolation}, // a cluster node refuses what it cannot replicate yet
	// The metadata group has no leader, or lost it while the change waited: retriable, as
	// Kafka's answer from a broker that is not the controller.
	{stream.ErrNotLeader, kerr.NotLeaderForPartition}, // before the cluster's errors it may wrap
	{stream.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{cluster.ErrNoLeader, kerr.NotController},
	{cluster.ErrLeaderChanged, kerr.NotController},
	// The node's Raft host stopped after a storage failure (a full disk, a failed fsync):
	// as Kafka's answer from a broker whose log directory failed, which clients retry
	// elsewhere once the partition's leadership moved.
	{cluster.ErrClosed, kerr.KafkaStorageError},
	{cluster.ErrStorage, kerr.KafkaStorageError}, // stalled by a full disk, retrying
	{stream.ErrCorruptBatch, kerr.CorruptMessage},
	{log.ErrCorruptBatch, kerr.CorruptMessage},
	{stream.ErrInvalidRecord, kerr.InvalidRecord},
	{stream.ErrMessageTooLarge, kerr.MessageTooLarge},
	{stream.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{stream.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{log.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	// The disk refused: full (passes once space is freed) or a failed fsync (the log refuses
	// writes until reopened). Kafka answers both KAFKA_STORAGE_ERROR, which clients retry.
	{syscall.ENOSPC, kerr.KafkaStorageError},
	{syscall.EDQUOT, kerr.KafkaStorageError},
	{log.ErrFailed, kerr.KafkaStorageError},
	{syscall.EIO, kerr.KafkaStorageError},
}

// errorCode is the Kafka error code for err (0 for nil, UNKNOWN_SERVER_ERROR if unmapped).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var km *kerrWithMsg
	if errors.As(err, &km) {
		return km.code
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.kerr.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is the optional message sent beside an error code: ours, not Kafka's generic
// description, so that a client shows why.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// kerrWithMsg is a protocol error with our own message, for checks made in this package.
type kerrWithMsg struct {
	code int16
	msg  string
}

func (e *kerrWithMsg) Error() string { return e.msg }
