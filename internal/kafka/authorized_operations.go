package kafka

// Authorized operations (KIP-430): Metadata, DescribeCluster, DescribeGroups,
// ConsumerGroupDescribe and DescribeTopicPartitions report, when asked, the bitfield of ACL
// operations the client may perform on a resource (bit n set = operation code n allowed).
// Kafka without an authorizer allows every operation it defines for the resource type, and so
// does yard without --kafka-authorizer; with the ACL authorizer, the operations the client's
// principal is allowed. authorizedOperations is the one place where that is decided.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// authorizedOperationsNone is Kafka's INT32_MIN: operations not requested (the schema default).
const authorizedOperationsNone = -2147483648

// supportedOperations is, per resource type, every operation Kafka defines for it (Kafka's
// AclEntry.supportedOperations).
var supportedOperations = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {
		kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
	},
	kmsg.ACLResourceTypeGroup: {
		kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
	},
	kmsg.ACLResourceTypeCluster: {
		kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
	},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
}

// clusterResourceName is the name of the one CLUSTER resource, as in Kafka.
const clusterResourceName = "kafka-cluster"

// authorizedOperations is the bitfield of operations this request's client may perform on the
// resource (rt, name). With no authorizer that is every supported operation; with one, the
// supported operations it allows the connection's principal.
func (rc *reqCtx) authorizedOperations(rt kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range supportedOperations[rt] {
		if rc.authorized(op, rt, name) {
			bits |= 1 << uint(op)
		}
	}
	return bits
}
