package kafka

// ListOffsets, versions 1-11. Timestamps: -2 earliest (log start), -1 latest (high
// watermark; the same for read_committed since there are no transactions), -3 max timestamp
// (KIP-734), -4 earliest local (= earliest: all data is local), -5 earliest pending upload
// (none: -1), and t >= 0: the first batch whose max timestamp is >= t (its base offset; the
// engine indexes batches, not records, so the answer can be a few records early, never late).

import (
	"encoding/binary"

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
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, leaderEpoch
			var p *stream.Partition
			if ok {
				p = t.Partition(rp.Partition)
			}
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.CurrentLeaderEpoch > leaderEpoch:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				var err error
				sp.Timestamp, sp.Offset, err = listOffset(p, rp.Timestamp)
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
	l := p.Log()
	switch ts {
	case -2, -4:
		return -1, l.StartOffset(), nil
	case -1:
		return -1, l.HighWatermark(), nil
	case -3:
		mts, off := l.MaxTimestamp()
		return mts, off, nil
	case -5:
		return -1, -1, nil
	}
	if ts < 0 {
		return -1, -1, nil
	}
	off, err := l.OffsetForTimestamp(ts)
	if err != nil || off < 0 {
		return -1, -1, err
	}
	// Report the found batch's timestamp: its first record's if that already qualifies, else
	// the batch's max.
	rr, err := l.Read(off, 1)
	if err != nil {
		return -1, -1, err
	}
	defer rr.Release()
	found := ts
	if len(rr.Ranges) > 0 {
		var h [43]byte
		if _, err := rr.Ranges[0].File.ReadAt(h[:], rr.Ranges[0].Pos); err == nil {
			base, maxTs := int64(binary.BigEndian.Uint64(h[27:])), int64(binary.BigEndian.Uint64(h[35:]))
			found = maxTs
			if base >= ts && h[22]&0x08 == 0 { // CreateTime batch whose first record qualifies
				found = base
			}
			off = int64(binary.BigEndian.Uint64(h[0:]))
		}
	}
	return found, off, nil
}
