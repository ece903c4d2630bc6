package kafka

// The leadership checks of the requests a client sends to a partition's leader (Produce,
// Fetch, ListOffsets, OffsetForLeaderEpoch), in Kafka's order: the client's current leader
// epoch against the partition's, then whether this node leads it. On a single node this node
// leads every partition in epoch 0 and both checks pass for any client; they matter on a
// cluster node (README, Cluster), where leadership moves with Raft elections.
//
// A refusal for leadership names the leader this node knows (KIP-951): CurrentLeader on the
// partition and the leader's endpoint in the response's NodeEndpoints (Produce v10+, Fetch
// v16+, as Kafka fills them), so that a client moves to it without a Metadata round trip.

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/yardmq/yard/internal/stream"
)

// leaderEpochCode checks the current leader epoch a client sent (-1: none) against p's:
// FENCED_LEADER_EPOCH if the client's is older (its metadata is stale), UNKNOWN_LEADER_EPOCH if
// newer (this node's is), else 0.
func leaderEpochCode(p *stream.Partition, clientEpoch int32) int16 {
	switch cur := p.LeaderEpoch(); {
	case clientEpoch < 0 || clientEpoch == cur:
		return 0
	case clientEpoch < cur:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// leaderHint is what a NOT_LEADER_OR_FOLLOWER answer says of the leader (KIP-951); id -1
// while none is known.
type leaderHint struct{ id, epoch int32 }

// notLeader returns NOT_LEADER_OR_FOLLOWER and the hint if this node does not lead p, else 0.
func (s *Server) notLeader(p *stream.Partition) (int16, leaderHint) {
	n := s.st.Node()
	if n.IsLeader(p) {
		return 0, leaderHint{}
	}
	h := leaderHint{id: n.Leader(p), epoch: -1}
	if h.id >= 0 {
		h.epoch = p.LeaderEpoch()
	}
	return kerr.NotLeaderForPartition.Code, h
}

// endpoints are the Kafka endpoints of the brokers in ids, for a response's NodeEndpoints.
func (s *Server) endpoints(ids map[int32]bool) []stream.BrokerInfo {
	if len(ids) == 0 {
		return nil
	}
	var out []stream.BrokerInfo
	for _, b := range s.st.Brokers() {
		if ids[b.ID] {
			out = append(out, b)
		}
	}
	return out
}

// absent answers a request for partition i of t that this node has no Partition of:
// NOT_LEADER_OR_FOLLOWER with the published leader as hint if the partition exists on other
// nodes (this one is not among its replicas), else UNKNOWN_TOPIC_OR_PARTITION.
func (s *Server) absent(t *stream.Topic, i int32) (int16, leaderHint) {
	if t == nil || !t.IsRemote(i) {
		return kerr.UnknownTopicOrPartition.Code, leaderHint{id: -1, epoch: -1}
	}
	ps := s.st.Node().State(t, i)
	return kerr.NotLeaderForPartition.Code, leaderHint{id: ps.Leader, epoch: ps.Epoch}
}
