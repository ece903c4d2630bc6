package kafka

// OffsetForLeaderEpoch, versions 0-4. There has only ever been leader epoch 0, so the end
// offset of epoch 0 (or any older epoch a client might name) is the log end visible to
// readers, and a newer epoch is unknown.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleOffsetForLeaderEpoch(rc *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t, ok := rc.s.st.Topic(rt.Topic)
		denied := !rc.authorizedTopic(kmsg.ACLOperationDescribe, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			var p *stream.Partition
			if ok {
				p = t.Partition(rp.Partition)
			}
			switch {
			case denied:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.CurrentLeaderEpoch > p.LeaderEpoch():
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.LeaderEpoch > p.LeaderEpoch():
				// UNDEFINED_EPOCH_OFFSET: -1/-1 with no error, as Kafka answers.
			default:
				sp.LeaderEpoch, sp.EndOffset = p.LeaderEpoch(), p.HighWatermark()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
