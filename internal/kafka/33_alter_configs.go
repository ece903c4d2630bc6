package kafka

// AlterConfigs, versions 0-2 (the legacy, replace-everything form): the configs given become
// the resource's whole set of dynamic values; anything not given reverts to its default.
// TOPIC, BROKER and GROUP resources, as DescribeConfigs.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(rc *reqCtx, req *kmsg.AlterConfigsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for i := range req.Resources {
		rr := &req.Resources[i]
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				set[c.Name] = *c.Value
			}
		}
		err := rc.authorizeConfigResource(kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			err = rc.s.st.AlterTopicConfigs(rr.ResourceName, set, req.ValidateOnly)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if err = rc.checkBrokerResource(rr.ResourceName); err == nil {
				err = rc.s.st.AlterBrokerConfigs(set, req.ValidateOnly)
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			if err = checkGroupResource(rr.ResourceName); err == nil {
				err = rc.s.st.AlterGroupConfigs(rr.ResourceName, set, req.ValidateOnly)
			}
		default:
			err = &kerrWithMsg{kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d is not supported", rr.ResourceType)}
		}
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return respond(resp), nil
}
