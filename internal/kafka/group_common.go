package kafka

// Helpers shared by the consumer-group APIs (08_offset_commit.go ... 69_consumer_group_describe.go),
// which translate between kmsg and internal/group.

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/log"
)

// groupErrorTable maps the coordinator's errors to Kafka error codes.
var groupErrorTable = []struct {
	err  error
	kerr *kerr.Error
}{
	// First: a failed write on a cluster node wraps the cause and ErrNotCoordinator.
	{group.ErrNotCoordinator, kerr.NotCoordinator},
	{group.ErrCoordinatorLoadInProgress, kerr.CoordinatorLoadInProgress},
	{group.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
	{group.ErrInvalidGroupID, kerr.InvalidGroupID},
	{group.ErrGroupIDNotFound, kerr.GroupIDNotFound},
	{group.ErrUnknownMemberID, kerr.UnknownMemberID},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrFencedInstanceID, kerr.FencedInstanceID},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrGroupTypeMismatch, kerr.InconsistentGroupProtocol},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{group.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{group.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{group.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{group.ErrGroupSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{group.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{group.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{group.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{group.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{group.ErrInvalidRequest, kerr.InvalidRequest},
	{group.ErrInvalidRegex, kerr.InvalidRegularExpression},
	{context.Canceled, kerr.CoordinatorNotAvailable},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	// The offsets log refused a write (full disk, failed fsync): Kafka's coordinator answers
	// KAFKA_STORAGE_ERROR from its log as NOT_COORDINATOR, which clients retry.
	{syscall.ENOSPC, kerr.NotCoordinator},
	{syscall.EDQUOT, kerr.NotCoordinator},
	{log.ErrFailed, kerr.NotCoordinator},
	{syscall.EIO, kerr.NotCoordinator},
}

// groupErrorCode is the Kafka code of a coordinator error (0 for nil).
func groupErrorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range groupErrorTable {
		if errors.Is(err, e.err) {
			return e.kerr.Code
		}
	}
	return errorCode(err)
}

// groupErrorMessage is our message for err when it says more than the code does.
func groupErrorMessage(err error) *string {
	if err == nil {
		return nil
	}
	for _, e := range groupErrorTable {
		if err == e.err { // a bare sentinel adds nothing to its code
			return nil
		}
	}
	return errorMessage(err)
}

// groups is the coordinator, or nil when the server runs without one.
func (rc *reqCtx) groups() *group.Coordinator { return rc.s.cfg.Groups }

// clientHost is the client's address as Kafka reports it in DescribeGroups ("/127.0.0.1").
func (rc *reqCtx) clientHost() string {
	if a, ok := rc.c.nc.RemoteAddr().(*net.TCPAddr); ok {
		return "/" + a.IP.String()
	}
	return "/" + rc.c.nc.RemoteAddr().String()
}

func grpMillis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func grpDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// grpOptStr is nil for "", else &s (nullable fields such as group.instance.id).
func grpOptStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
