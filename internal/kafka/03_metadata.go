package kafka

// Metadata, versions 0-13. One broker (this node), the leader and only replica of every
// partition, leader epoch 0; on a cluster node (README's Cluster) every registered broker,
// and for a replicated partition its Raft group's leader (LEADER_NOT_AVAILABLE while it
// elects one), term as leader epoch, voters as replicas and, from the leader, the voters it
// sees replicating as ISR (all voters from a follower, which cannot tell); a node that is
// not one of a partition's replicas answers what the partition's leader last published. Topics are looked up by name or (v10+) by topic ID; unknown
// topics are created when auto-creation is on and the request allows it (always before v4).
// As in Kafka, whose controller creates the topic asynchronously, the response that creates a
// topic answers LEADER_NOT_AVAILABLE for it, with no partitions; the next request sees it.
// Clients retry on that code, and some (kafka-go's topic deletion) count on it.
// Authorized operations (v8+) are reported when asked: for the cluster on v8-10, per topic.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/stream"
)

func handleMetadata(rc *reqCtx, req *kmsg.MetadataRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	host, port := rc.advertisedHostPort()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = rc.s.st.Node().ID(), host, port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	for _, cb := range rc.s.st.Brokers() { // a cluster's other members
		if cb.ID != b.NodeID {
			ob := kmsg.NewMetadataResponseBroker()
			ob.NodeID, ob.Host, ob.Port = cb.ID, cb.Host, cb.Port
			resp.Brokers = append(resp.Brokers, ob)
		}
	}
	resp.ClusterID = &rc.s.cfg.ClusterID
	resp.ControllerID = rc.s.st.Node().ID()

	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeCluster, clusterResourceName)
	}
	rc.metadataTopics(req, resp)
	if req.Version >= 8 && req.IncludeTopicAuthorizedOperations {
		for i := range resp.Topics {
			if mt := &resp.Topics[i]; mt.Topic != nil {
				mt.AuthorizedOperations = rc.authorizedOperations(kmsg.ACLResourceTypeTopic, *mt.Topic)
			}
		}
	}
	return respond(resp), nil
}

func (rc *reqCtx) metadataTopics(req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range rc.s.st.Topics() {
			// As Kafka: topics the principal may not Describe are left out silently.
			if rc.authorizedTopic(kmsg.ACLOperationDescribe, t.Name) {
				resp.Topics = append(resp.Topics, rc.metadataTopic(t, req.Version))
			}
		}
		return
	}
	autoCreate := rc.s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	denied := func(name *string, id [16]byte) {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.TopicID = name, id
		mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		mt.Partitions = []kmsg.MetadataResponseTopicPartition{}
		resp.Topics = append(resp.Topics, mt)
	}
	for _, rt := range req.Topics {
		var t *stream.Topic
		var err error
		if rt.Topic == nil || *rt.Topic == "" {
			var ok bool
			if t, ok = rc.s.st.TopicByID(catalog.UUID(rt.TopicID)); !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !rc.authorizedTopic(kmsg.ACLOperationDescribe, t.Name) {
				denied(nil, rt.TopicID) // as Kafka: the name is not revealed
				continue
			}
		} else if !rc.authorizedTopic(kmsg.ACLOperationDescribe, *rt.Topic) {
			denied(rt.Topic, rt.TopicID)
			continue
		} else if _, exists := rc.s.st.Topic(*rt.Topic); !exists && autoCreate && !rc.mayCreateTopic(*rt.Topic) {
			// Auto-creation needs Create on the cluster or on the topic.
			denied(rt.Topic, rt.TopicID)
			continue
		} else if t, err = rc.topic(*rt.Topic, autoCreate); err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = errorCode(err)
			if errors.Is(err, errTopicCreated) {
				mt.Partitions = []kmsg.MetadataResponseTopicPartition{}
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, rc.metadataTopic(t, req.Version))
	}
}

// mayCreateTopic reports whether the principal may create topic: Create on the cluster or
// on the topic, as Kafka checks for CreateTopics and auto-creation.
func (rc *reqCtx) mayCreateTopic(topic string) bool {
	return rc.authorizedCluster(kmsg.ACLOperationCreate) || rc.authorizedTopic(kmsg.ACLOperationCreate, topic)
}

// errTopicCreated answers a Metadata request that created the topic, as Kafka answers it.
var errTopicCreated = &kerrWithMsg{kerr.LeaderNotAvailable.Code, "topic created; its partitions are listed from the next request on"}

func (rc *reqCtx) metadataTopic(t *stream.Topic, version int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	node := rc.s.st.Node()
	for i := range t.NumPartitions() {
		ps := node.State(t, i)
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = i
		mp.Leader = ps.Leader
		if mp.Leader < 0 { // a replicated partition electing its leader
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mp.LeaderEpoch = ps.Epoch
		mp.Replicas = ps.Replicas
		mp.ISR = ps.ISR
		mp.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// topic finds a topic by name, creating it when autoCreate allows (as Kafka's
// auto.create.topics.enable, with the default partition count and broker-default configs);
// a topic it creates is answered errTopicCreated.
func (rc *reqCtx) topic(name string, autoCreate bool) (*stream.Topic, error) {
	if t, ok := rc.s.st.Topic(name); ok {
		return t, nil
	}
	if !autoCreate {
		return nil, stream.ErrUnknownTopic
	}
	t, err := rc.s.st.CreateTopic(name, rc.s.cfg.DefaultPartitions, nil, false)
	if errors.Is(err, stream.ErrTopicExists) { // created concurrently by another request
		if t, ok := rc.s.st.Topic(name); ok {
			return t, nil
		}
	}
	if err != nil {
		return nil, err
	}
	rc.c.log.Info("topic auto-created", "topic", t.Name, "partitions", rc.s.cfg.DefaultPartitions)
	return nil, errTopicCreated
}
