package kafka

// DeleteTopics, versions 0-6: by name (all versions) or topic ID (v6+).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/catalog"
)

func handleDeleteTopics(rc *reqCtx, req *kmsg.DeleteTopicsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		topics = nil
		for _, n := range req.TopicNames {
			topics = append(topics, kmsg.DeleteTopicsRequestTopic{Topic: strPtr(n)})
		}
	}
	for _, rt := range topics {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name := ""
		if rt.Topic != nil && *rt.Topic != "" {
			name = *rt.Topic
		} else if t, ok := rc.s.st.TopicByID(catalog.UUID(rt.TopicID)); ok {
			name = t.Name
			st.Topic = strPtr(name)
		} else {
			st.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !rc.authorizedTopic(kmsg.ACLOperationDelete, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			if rt.Topic == nil || *rt.Topic == "" {
				st.Topic = nil // named by ID: the name is not revealed
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if t, ok := rc.s.st.Topic(name); ok {
			st.TopicID = t.ID
		}
		if err := rc.s.st.DeleteTopic(name); err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
