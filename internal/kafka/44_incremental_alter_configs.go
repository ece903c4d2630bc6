package kafka

// IncrementalAlterConfigs, versions 0-1: SET, DELETE, and for LIST configs APPEND and
// SUBTRACT (from the default when not set), as Kafka; INVALID_CONFIG otherwise.
// TOPIC, BROKER and GROUP resources, as DescribeConfigs.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleIncrementalAlterConfigs(rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for i := range req.Resources {
		rr := &req.Resources[i]
		out := kmsg.NewIncrementalAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = rr.ResourceType, rr.ResourceName
		ops := make([]stream.ConfigOp, 0, len(rr.Configs))
		for _, c := range rr.Configs {
			op := stream.ConfigOp{Name: c.Name, Op: stream.ConfigOpType(c.Op)}
			if c.Value != nil {
				op.Value = *c.Value
			}
			ops = append(ops, op)
		}
		err := rc.authorizeConfigResource(kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName)
		switch {
		case err != nil:
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			err = rc.s.st.IncrementalAlterTopicConfigs(rr.ResourceName, ops, req.ValidateOnly)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			if err = rc.checkBrokerResource(rr.ResourceName); err == nil {
				err = rc.s.st.IncrementalAlterBrokerConfigs(ops, req.ValidateOnly)
			}
		case rr.ResourceType == kmsg.ConfigResourceTypeGroupConfig:
			if err = checkGroupResource(rr.ResourceName); err == nil {
				err = rc.s.st.IncrementalAlterGroupConfigs(rr.ResourceName, ops, req.ValidateOnly)
			}
		default:
			err = &kerrWithMsg{kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d is not supported", rr.ResourceType)}
		}
		out.ErrorCode, out.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, out)
	}
	return respond(resp), nil
}
