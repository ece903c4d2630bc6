package group

import (
	"errors"
	"time"
)

// Errors of the coordinator. Each is one Kafka error code; the Kafka front end maps them in
// one table. They are returned bare or wrapped with a message (errors.Is works either way).
var (
	ErrCoordinatorNotAvailable = errors.New("coordinator not available")
	ErrInvalidGroupID          = errors.New("invalid group id")
	ErrGroupIDNotFound         = errors.New("group id not found")
	ErrUnknownMemberID         = errors.New("unknown member id")
	ErrMemberIDRequired        = errors.New("member id required")
	ErrIllegalGeneration       = errors.New("illegal generation")
	ErrRebalanceInProgress     = errors.New("rebalance in progress")
	ErrFencedInstanceID        = errors.New("fenced instance id")
	ErrInconsistentProtocol    = errors.New("inconsistent group protocol")
	ErrInvalidSessionTimeout   = errors.New("invalid session timeout")
	ErrNonEmptyGroup           = errors.New("group is not empty")
	ErrUnknownTopicOrPartition = errors.New("unknown topic or partition")
	ErrOffsetMetadataTooLarge  = errors.New("offset metadata too large")
	ErrGroupSubscribedToTopic  = errors.New("group is subscribed to the topic")
	ErrUnsupportedAssignor     = errors.New("unsupported assignor")
	ErrFencedMemberEpoch       = errors.New("fenced member epoch")
	ErrUnreleasedInstanceID    = errors.New("unreleased instance id")
	ErrStaleMemberEpoch        = errors.New("stale member epoch")
	ErrInvalidRequest          = errors.New("invalid request")
	ErrGroupTypeMismatch       = errors.New("group exists with another protocol")
	ErrInvalidRegex            = errors.New("invalid regular expression")
)

// State is a group's state, named as Kafka names it (ListGroups and DescribeGroups report
// these strings).
type State int8

const (
	StateEmpty State = iota
	StatePreparingRebalance
	StateCompletingRebalance
	StateStable
	StateDead
	// States of KIP-848 consumer groups.
	StateAssigning
	StateReconciling
)

func (s State) String() string {
	switch s {
	case StateEmpty:
		return "Empty"
	case StatePreparingRebalance:
		return "PreparingRebalance"
	case StateCompletingRebalance:
		return "CompletingRebalance"
	case StateStable:
		return "Stable"
	case StateDead:
		return "Dead"
	case StateAssigning:
		return "Assigning"
	case StateReconciling:
		return "Reconciling"
	}
	return "Unknown"
}

// Group types, as ListGroups v5 reports them.
const (
	TypeClassic  = "classic"
	TypeConsumer = "consumer"
)

// Protocol is one (name, metadata) pair a member offers in JoinGroup.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a classic JoinGroup.
type JoinRequest struct {
	Group            string
	MemberID         string
	InstanceID       string // group.instance.id; "" = dynamic member
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID is KIP-394 (JoinGroup v4+): a first join without a member id is
	// answered ErrMemberIDRequired with the id to rejoin with.
	RequireKnownMemberID bool
	Reason               string
}

// JoinMember is one member as the leader sees it in its JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// JoinResult is the answer to a JoinRequest. Err set means only MemberID may be meaningful
// (it carries the generated id with ErrMemberIDRequired).
type JoinResult struct {
	Err            error
	Generation     int32
	ProtocolType   string
	Protocol       string
	Leader         string
	MemberID       string
	Members        []JoinMember // only for the leader
	SkipAssignment bool         // a static leader rejoined a stable group: keep the assignment
}

// SyncRequest is a classic SyncGroup.
type SyncRequest struct {
	Group        string
	MemberID     string
	InstanceID   string
	Generation   int32
	ProtocolType string // may be empty (SyncGroup < v5)
	Protocol     string // may be empty (SyncGroup < v5)
	Assignments  map[string][]byte
}

// SyncResult is the answer to a SyncRequest.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a classic Heartbeat.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
}

// LeaveMember identifies one member leaving: by member id, or (admin removal, static
// members) by instance id with an empty member id.
type LeaveMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// MemberDescription is one member in DescribeGroup.
type MemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte // for the selected protocol
	Assignment []byte
}

// GroupDescription answers DescribeGroups.
type GroupDescription struct {
	Group        string
	State        State
	Type         string // TypeClassic or TypeConsumer
	ProtocolType string
	Protocol     string
	Members      []MemberDescription
}

// GroupListing is one entry of ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        State
	Type         string
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// OffsetValue is a committed offset.
type OffsetValue struct {
	Offset      int64
	LeaderEpoch int32 // -1 if unknown
	Metadata    string
	CommitMs    int64 // commit timestamp, unix milliseconds
}

// CommitRequest is an OffsetCommit. Generation < 0 and an empty member id is a "simple"
// commit (admin tools, manual assignment), allowed only while the group has no members.
type CommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32 // classic generation, or KIP-848 member epoch
	Offsets    map[TopicPartition]OffsetValue
}

// PartitionError is a per-partition outcome.
type PartitionError struct {
	TopicPartition
	Err error
}

// FetchedOffset is one answer of FetchOffsets.
type FetchedOffset struct {
	TopicPartition
	OffsetValue
}

// PartitionLag is lag for one partition of one group.
type PartitionLag struct {
	Topic       string
	Partition   int32
	Committed   int64 // -1 if nothing is committed
	LogEnd      int64 // -1 if the partition is unknown
	Lag         int64 // LogEnd - Committed, or -1 when either is unknown
	MemberID    string
	ClientID    string
	ClientHost  string
	HasAssignee bool
}

// GroupLag is a group, its state and the lag of every partition it has committed offsets for
// or has assigned.
type GroupLag struct {
	Group      string
	State      State
	Partitions []PartitionLag
}
