package kafka

// OffsetForLeaderEpoch, versions 0-4: the end offset of a leader epoch, with which a consumer
// checks after a leader change (or an out-of-range fetch) that the records it consumed are
// still in the log (KIP-320). The answer comes from the epochs stamped in the log's batches
// (stream.Partition.EndOffsetForEpoch); on a single node every batch is in epoch 0. Only the
// leader answers, and on a cluster node only once it holds everything acknowledged before
// its term: a new leader still applying it would name an end below what the consumer read,
// which the consumer would take for a truncation.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleOffsetForLeaderEpoch(rc *reqCtx, req *kmsg.OffsetForLeaderEpochRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	node := rc.s.st.Node()
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
				sp.ErrorCode, _ = rc.s.absent(t, rp.Partition)
			case leaderEpochCode(p, rp.CurrentLeaderEpoch) != 0:
				sp.ErrorCode = leaderEpochCode(p, rp.CurrentLeaderEpoch)
			case !node.IsLeader(p):
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case !node.LeaderReady(p):
				sp.ErrorCode = kerr.OffsetNotAvailable.Code
			default:
				// An epoch newer than the leader's or UNDEFINED_EPOCH: -1/-1 with no error
				// (UNDEFINED_EPOCH_OFFSET), as Kafka answers.
				var err error
				sp.LeaderEpoch, sp.EndOffset, err = p.EndOffsetForEpoch(rp.LeaderEpoch)
				if err != nil {
					sp.LeaderEpoch, sp.EndOffset, sp.ErrorCode = -1, -1, errorCode(err)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}
