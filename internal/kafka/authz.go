package kafka

// Authorization: with an ACL authorizer configured (Config.Authorizer, Kafka's
// authorizer.class.name), every API checks the operations Kafka's KafkaApis checks, on the
// resources it checks them on, and answers with Kafka's codes (TOPIC_, GROUP_, CLUSTER_,
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED). Without one, everything is allowed, as in Kafka
// without an authorizer.

import (
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth/acl"
)

// authorized reports whether the request's principal may perform op on (rt, name).
func (rc *reqCtx) authorized(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	a := rc.s.cfg.Authorizer
	if a == nil {
		return true
	}
	return a.Authorize(rc.Principal().String(), rc.c.remoteHost(), op, rt, name)
}

// authorizedCluster is authorized on the one CLUSTER resource.
func (rc *reqCtx) authorizedCluster(op kmsg.ACLOperation) bool {
	return rc.authorized(op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

func (rc *reqCtx) authorizedTopic(op kmsg.ACLOperation, topic string) bool {
	return rc.authorized(op, kmsg.ACLResourceTypeTopic, topic)
}

func (rc *reqCtx) authorizedGroup(op kmsg.ACLOperation, group string) bool {
	return rc.authorized(op, kmsg.ACLResourceTypeGroup, group)
}

func (rc *reqCtx) authorizedTxn(op kmsg.ACLOperation, txnID string) bool {
	return rc.authorized(op, kmsg.ACLResourceTypeTransactionalId, txnID)
}

// authorizedAny reports whether the principal may perform op on some resource of type rt
// (Kafka's authorizeByResourceType).
func (rc *reqCtx) authorizedAny(op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	a := rc.s.cfg.Authorizer
	if a == nil {
		return true
	}
	return a.AuthorizeAny(rc.Principal().String(), rc.c.remoteHost(), op, rt)
}

// remoteHost is the client's address as ACL hosts name it (the IP, no port).
func (c *conn) remoteHost() string {
	if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return c.nc.RemoteAddr().String()
	}
	return host
}

// Authorization failures as errors, for the paths that carry errors (errorCode maps them).
var (
	errTopicAuthorization   = &kerrWithMsg{kerr.TopicAuthorizationFailed.Code, "not authorized to access this topic"}
	errGroupAuthorization   = &kerrWithMsg{kerr.GroupAuthorizationFailed.Code, "not authorized to access this group"}
	errClusterAuthorization = &kerrWithMsg{kerr.ClusterAuthorizationFailed.Code, "not authorized to access the cluster"}
	errTxnAuthorization     = &kerrWithMsg{kerr.TransactionalIDAuthorizationFailed.Code, "not authorized to use this transactional id"}
	// errOperationNotAttempted: part of a request not tried because another part was refused.
	errOperationNotAttempted = &kerrWithMsg{kerr.OperationNotAttempted.Code, "not attempted: another part of the request was refused"}
)

// authorizeConfigResource checks op (DescribeConfigs, AlterConfigs) on a config resource:
// a topic, the broker (the cluster resource, as Kafka) or a group.
func (rc *reqCtx) authorizeConfigResource(op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) error {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !rc.authorizedTopic(op, name) {
			return errTopicAuthorization
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !rc.authorizedCluster(op) {
			return errClusterAuthorization
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !rc.authorizedGroup(op, name) {
			return errGroupAuthorization
		}
	}
	return nil
}
