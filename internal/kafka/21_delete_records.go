package kafka

// DeleteRecords, versions 0-2: raise a partition's log start offset (-1 = the high
// watermark); whole segments below it are dropped by the engine.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleDeleteRecords(rc *reqCtx, req *kmsg.DeleteRecordsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t, ok := rc.s.st.Topic(rt.Topic)
		denied := !rc.authorizedTopic(kmsg.ACLOperationDelete, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			var p *stream.Partition
			if ok {
				p = t.Partition(rp.Partition)
			}
			if denied || p == nil {
				sp.ErrorCode, _ = rc.s.absent(t, rp.Partition) // NOT_LEADER_OR_FOLLOWER on a non-replica
				if denied {
					sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if low, err := p.DeleteRecords(rp.Offset); err != nil {
				sp.ErrorCode = errorCode(err)
			} else {
				sp.LowWatermark = low
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
