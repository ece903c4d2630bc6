package kafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
)

// reqCtx is what a handler gets besides its request.
type reqCtx struct {
	c   *conn
	s   *Server
	hdr *reqHeader
}

// Principal is who the request's connection authenticated as (auth.Anonymous without
// authentication): what an authorizer checks.
func (rc *reqCtx) Principal() auth.Principal { return rc.c.principal }

// api is one served API: the versions decoded and served, and the handler.
type api struct {
	key int16
	// advertisedMin is the lowest version ApiVersions lists; usually min. Produce lists 0
	// (librdkafka disables compression otherwise) but answers 0-2 with UNSUPPORTED_VERSION.
	advertisedMin, min, max int16
	handle                  func(*reqCtx, kmsg.Request) (reply, error)
}

// typed adapts a handler for one request type to the table's signature.
func typed[T kmsg.Request](f func(*reqCtx, T) (reply, error)) func(*reqCtx, kmsg.Request) (reply, error) {
	return func(rc *reqCtx, r kmsg.Request) (reply, error) {
		t, ok := r.(T)
		if !ok {
			panic(fmt.Sprintf("BUG: handler for %T got %T", *new(T), r))
		}
		return f(rc, t)
	}
}

// apiTable is the one place where APIs are registered; ApiVersions advertises exactly these.
// Each Server builds it once (newAPITable) and never changes it.
type apiTable map[int16]*api

func newAPITable() apiTable {
	list := []*api{
		{key: 0, advertisedMin: 0, min: 3, max: 13, handle: typed(handleProduce)},
		{key: 1, advertisedMin: 4, min: 4, max: 18, handle: typed(handleFetch)},
		{key: 2, advertisedMin: 1, min: 1, max: 11, handle: typed(handleListOffsets)},
		{key: 3, advertisedMin: 0, min: 0, max: 13, handle: typed(handleMetadata)},
		// Consumer groups (internal/group): 8-16, 42, 47, 68, 69.
		{key: 8, advertisedMin: 0, min: 0, max: 9, handle: typed(handleOffsetCommit)},
		{key: 9, advertisedMin: 0, min: 0, max: 9, handle: typed(handleOffsetFetch)},
		{key: 10, advertisedMin: 0, min: 0, max: 6, handle: typed(handleFindCoordinator)},
		{key: 11, advertisedMin: 0, min: 0, max: 9, handle: typed(handleJoinGroup)},
		{key: 12, advertisedMin: 0, min: 0, max: 4, handle: typed(handleHeartbeat)},
		{key: 13, advertisedMin: 0, min: 0, max: 5, handle: typed(handleLeaveGroup)},
		{key: 14, advertisedMin: 0, min: 0, max: 5, handle: typed(handleSyncGroup)},
		{key: 15, advertisedMin: 0, min: 0, max: 6, handle: typed(handleDescribeGroups)},
		{key: 16, advertisedMin: 0, min: 0, max: 5, handle: typed(handleListGroups)},
		{key: 17, advertisedMin: 0, min: 0, max: 1, handle: typed(handleSaslHandshake)},
		{key: 18, advertisedMin: 0, min: 0, max: 4, handle: typed(handleApiVersions)},
		{key: 19, advertisedMin: 0, min: 0, max: 7, handle: typed(handleCreateTopics)},
		{key: 20, advertisedMin: 0, min: 0, max: 6, handle: typed(handleDeleteTopics)},
		{key: 21, advertisedMin: 0, min: 0, max: 2, handle: typed(handleDeleteRecords)},
		{key: 22, advertisedMin: 0, min: 0, max: 5, handle: typed(handleInitProducerID)},
		{key: 23, advertisedMin: 0, min: 0, max: 4, handle: typed(handleOffsetForLeaderEpoch)},
		{key: 24, advertisedMin: 0, min: 0, max: 5, handle: typed(handleAddPartitionsToTxn)},
		{key: 25, advertisedMin: 0, min: 0, max: 4, handle: typed(handleAddOffsetsToTxn)},
		{key: 26, advertisedMin: 0, min: 0, max: 5, handle: typed(handleEndTxn)},
		{key: 28, advertisedMin: 0, min: 0, max: 5, handle: typed(handleTxnOffsetCommit)},
		// Security, quotas and replica placement: answered clearly (no authorizer, no quotas,
		// no SCRAM yet; one node, so elections and reassignments are trivial).
		{key: 29, advertisedMin: 0, min: 0, max: 3, handle: typed(handleDescribeAcls)},
		{key: 30, advertisedMin: 0, min: 0, max: 3, handle: typed(handleCreateAcls)},
		{key: 31, advertisedMin: 0, min: 0, max: 3, handle: typed(handleDeleteAcls)},
		{key: 32, advertisedMin: 0, min: 0, max: 4, handle: typed(handleDescribeConfigs)},
		{key: 33, advertisedMin: 0, min: 0, max: 2, handle: typed(handleAlterConfigs)},
		{key: 36, advertisedMin: 0, min: 0, max: 2, handle: typed(handleSaslAuthenticate)},
		{key: 37, advertisedMin: 0, min: 0, max: 3, handle: typed(handleCreatePartitions)},
		{key: 42, advertisedMin: 0, min: 0, max: 2, handle: typed(handleDeleteGroups)},
		{key: 43, advertisedMin: 0, min: 0, max: 2, handle: typed(handleElectLeaders)},
		{key: 44, advertisedMin: 0, min: 0, max: 1, handle: typed(handleIncrementalAlterConfigs)},
		{key: 45, advertisedMin: 0, min: 0, max: 1, handle: typed(handleAlterPartitionReassignments)},
		{key: 46, advertisedMin: 0, min: 0, max: 0, handle: typed(handleListPartitionReassignments)},
		{key: 47, advertisedMin: 0, min: 0, max: 0, handle: typed(handleOffsetDelete)},
		{key: 48, advertisedMin: 0, min: 0, max: 1, handle: typed(handleDescribeClientQuotas)},
		{key: 49, advertisedMin: 0, min: 0, max: 1, handle: typed(handleAlterClientQuotas)},
		{key: 50, advertisedMin: 0, min: 0, max: 0, handle: typed(handleDescribeUserScramCredentials)},
		{key: 51, advertisedMin: 0, min: 0, max: 0, handle: typed(handleAlterUserScramCredentials)},
		{key: 65, advertisedMin: 0, min: 0, max: 0, handle: typed(handleDescribeTransactions)},
		{key: 66, advertisedMin: 0, min: 0, max: 1, handle: typed(handleListTransactions)},
		{key: 60, advertisedMin: 0, min: 0, max: 2, handle: typed(handleDescribeCluster)},
		{key: 68, advertisedMin: 0, min: 0, max: 1, handle: typed(handleConsumerGroupHeartbeat)},
		{key: 69, advertisedMin: 0, min: 0, max: 1, handle: typed(handleConsumerGroupDescribe)},
		{key: 75, advertisedMin: 0, min: 0, max: 0, handle: typed(handleDescribeTopicPartitions)},
	}
	m := make(apiTable, len(list))
	for _, a := range list {
		if _, dup := m[a.key]; dup {
			panic("BUG: api key registered twice: " + strconv.Itoa(int(a.key)))
		}
		if r := kmsg.RequestForKey(a.key); r == nil || r.MaxVersion() < a.max {
			panic("BUG: kmsg cannot decode api key " + strconv.Itoa(int(a.key)) + " up to the version served")
		}
		m[a.key] = a
	}
	return m
}

// advertisedHostPort is the address clients are told to use for this broker: configured, or
// the local address of the connection the request came on (on one node, the address the client
// already reached us at).
func (rc *reqCtx) advertisedHostPort() (string, int32) {
	host, port := rc.s.cfg.AdvertisedHost, rc.s.cfg.AdvertisedPort
	if !rc.c.listener.primary {
		// Every listener but the primary one advertises its own address: a client that
		// came in over SSL is sent back to the SSL port.
		port = 0
	}
	if host != "" && port != 0 {
		return host, port
	}
	if a, ok := rc.c.nc.LocalAddr().(*net.TCPAddr); ok {
		if host == "" {
			host = a.IP.String()
		}
		if port == 0 {
			port = int32(a.Port)
		}
	}
	return host, port
}
