package kafka

// DescribeConfigs, versions 0-4, for TOPIC resources (effective topic configs with their
// sources and synonyms), BROKER resources (the dynamic broker-wide defaults; the resource
// name is "" for the cluster default or this node's ID, which on one node are the same) and
// GROUP resources (a group's configs, which it has whether or not it exists, as in Kafka).

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleDescribeConfigs(rc *reqCtx, req *kmsg.DescribeConfigsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for i := range req.Resources {
		rr := &req.Resources[i]
		out := kmsg.NewDescribeConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []stream.ConfigEntry
		err := rc.authorizeConfigResource(kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName)
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			entries, err = rc.s.st.TopicConfigs(rr.ResourceName)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if err = rc.checkBrokerResource(rr.ResourceName); err == nil {
				entries = rc.s.st.BrokerConfigs()
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			if err = checkGroupResource(rr.ResourceName); err == nil {
				entries = rc.s.st.GroupConfigs(rr.ResourceName)
			}
		default:
			err = &kerrWithMsg{kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d is not supported", rr.ResourceType)}
		}
		if err != nil {
			out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
			resp.Resources = append(resp.Resources, out)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !contains(rr.ConfigNames, e.Name) {
				continue
			}
			out.Configs = append(out.Configs, describeEntry(e, req.IncludeSynonyms, req.IncludeDocumentation))
		}
		resp.Resources = append(resp.Resources, out)
	}
	return respond(resp), nil
}

func describeEntry(e stream.ConfigEntry, synonyms, doc bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = e.Name, strPtr(e.Value)
	c.Source = kmsg.ConfigSource(e.Source)
	c.IsDefault = e.Source == stream.SourceDefault
	c.ConfigType = kmsg.ConfigType(e.Type)
	if synonyms {
		for _, s := range e.Synonyms {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Value, cs.Source = s.Name, strPtr(s.Value), kmsg.ConfigSource(s.Source)
			c.ConfigSynonyms = append(c.ConfigSynonyms, cs)
		}
	}
	if doc {
		c.Documentation = strPtr(e.Doc)
	}
	return c
}

// checkBrokerResource accepts "" (cluster-wide default) and this node's ID.
func (rc *reqCtx) checkBrokerResource(name string) error {
	if name == "" || name == strconv.Itoa(int(rc.s.st.Node().ID())) {
		return nil
	}
	return &kerrWithMsg{kerr.InvalidRequest.Code, fmt.Sprintf("unknown broker %q: this cluster has one broker, id %d", name, rc.s.st.Node().ID())}
}

// checkGroupResource refuses an empty group name, as Kafka does.
func checkGroupResource(name string) error {
	if name == "" {
		return &kerrWithMsg{kerr.InvalidRequest.Code, "Group name must not be empty"}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
