package kafka

// ListOffsets, versions 1-11. Timestamps: -2 earliest (log start), -1 latest (high
// watermark; the last stable offset for read_committed, v2+), -3 max timestamp
// (KIP-734: the first record with the largest timestamp), -4 earliest local (= earliest: all
// data is local), -5 earliest pending upload (none: -1), and t >= 0: the first record whose
// timestamp is >= t (stream.Partition.OffsetForTimestamp).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/stream"
)

func handleListOffsets(rc *reqCtx, req *kmsg.ListOffsetsRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for i := range req.Topics {
		rt := &req.Topics[i]
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, ok := rc.s.st.Topic(rt.Topic)
		denied := !rc.authorizedTopic(kmsg.ACLOperationDescribe, rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, rc.s.st.Node().LeaderEpoch(nil)
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
			case !rc.s.st.Node().IsLeader(p):
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case rp.Timestamp != -2 && rp.Timestamp != -4 && !rc.s.st.Node().LeaderReady(p):
				// A new leader still applying what its predecessor acknowledged: its end
				// is not known yet (KIP-207); the client retries.
				sp.ErrorCode = kerr.OffsetNotAvailable.Code
			default:
				var err error
				sp.Timestamp, sp.Offset, err = listOffset(p, rp.Timestamp)
				if rp.Timestamp == -1 && req.Version >= 2 && req.IsolationLevel == 1 {
					sp.Offset = p.LastStableOffset()
				}
				if err == nil && sp.Offset >= 0 {
					// The epoch the offset was written in: a consumer starting there
					// validates its position with it (OffsetForLeaderEpoch).
					sp.LeaderEpoch, err = p.EpochAt(sp.Offset)
				}
				sp.ErrorCode = errorCode(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return respond(resp), nil
}

// listOffset answers one partition: (timestamp, offset).
func listOffset(p *stream.Partition, ts int64) (int64, int64, error) {
	switch {
	case ts == -2 || ts == -4:
		return -1, p.StartOffset(), nil
	case ts == -1:
		return -1, p.HighWatermark(), nil
	case ts == -3:
		return p.MaxTimestamp()
	case ts < 0: // -5 (earliest pending upload: nothing is tiered) and unknown specials
		return -1, -1, nil
	}
	off, found, err := p.OffsetForTimestamp(ts)
	return found, off, err
}
