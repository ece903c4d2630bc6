package stream

// Partition leadership as the nodes that are not a partition's replicas learn it: the
// leader of a partition whose placement is recorded (placement.go) publishes its leader id,
// leader epoch and in-sync replicas through the metadata group whenever they change (as
// KRaft's leaders write partition records), so that every node's Metadata names the leader
// and a non-replica's NOT_LEADER_OR_FOLLOWER carries a hint. Replicas answer from their own
// Raft group, which is fresher; a row published by an older epoch never replaces a newer one.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/yardmq/yard/internal/catalog"
)

// Leadership is a partition's leader as last published.
type Leadership struct {
	Leader int32   `json:"leader"`
	Epoch  int32   `json:"epoch"`
	ISR    []int32 `json:"isr"`
}

type leaderKey struct {
	id catalog.UUID
	p  int32
}

// leadershipRow is one published leadership, in the create command and the snapshot.
type leadershipRow struct {
	ID        catalog.UUID `json:"id"`
	Partition int32        `json:"partition"`
	Leadership
}

// opPartitionLeader publishes a partition's leadership:
// {"op": "partition_leader", "leadership": {"id": "<topic id>", "partition": <n>, "leader": <node>, "epoch": <n>, "isr": [...]}}
const opPartitionLeader = "partition_leader"

// publishIntervalMs is how often a node looks for a leadership of its own to publish.
const publishIntervalMs = 100

// RemoteLeadership is the leadership last published for partition i of t, if any.
func (m *Manager) RemoteLeadership(t *Topic, i int32) (Leadership, bool) {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	l, ok := m.leaders[leaderKey{t.ID, i}]
	l.ISR = slices.Clone(l.ISR)
	return l, ok
}

// applyLeadership records a published leadership, unless an equal or newer epoch's is known.
func (m *Manager) applyLeadership(r leadershipRow) {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	k := leaderKey{r.ID, r.Partition}
	if cur, ok := m.leaders[k]; ok && cur.Epoch > r.Epoch {
		return
	}
	if m.leaders == nil {
		m.leaders = map[leaderKey]Leadership{}
	}
	m.leaders[k] = r.Leadership
}

// forgetLeadership drops the rows of a deleted topic.
func (m *Manager) forgetLeadership(id catalog.UUID) {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	for k := range m.leaders {
		if k.id == id {
			delete(m.leaders, k)
		}
	}
}

func (m *Manager) leadershipRows() []leadershipRow {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	var out []leadershipRow
	for k, l := range m.leaders {
		out = append(out, leadershipRow{ID: k.id, Partition: k.p, Leadership: l})
	}
	return out
}

// publishLeadershipLoop publishes, until the manager closes, the leadership of every
// partition this node leads whose placement is recorded, when it differs from the published
// one (started by SetCatalogReplicator).
func (m *Manager) publishLeadershipLoop(r CatalogReplicator) {
	defer m.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	tick := time.NewTicker(publishIntervalMs * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		node := m.Node()
		for _, t := range m.Topics() {
			if t.placement() == nil {
				continue
			}
			for _, p := range t.Partitions() {
				if p.Replicas() == nil || !node.IsLeader(p) || !node.LeaderReady(p) {
					continue
				}
				l := Leadership{Leader: node.ID(), Epoch: node.LeaderEpoch(p), ISR: node.ISR(p)}
				if cur, ok := m.RemoteLeadership(t, p.Index); ok && cur.Leader == l.Leader && cur.Epoch == l.Epoch && slices.Equal(cur.ISR, l.ISR) {
					continue
				}
				cmd, err := json.Marshal(catalogCmd{Op: opPartitionLeader, Leadership: &leadershipRow{ID: t.ID, Partition: p.Index, Leadership: l}})
				if err != nil {
					m.log.Error("cannot encode a leadership", "err", err)
					continue
				}
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				if err := r.Replicate(pctx, cmd); err != nil && ctx.Err() == nil {
					m.log.Debug("cannot publish a partition's leadership; retrying", "topic", t.Name, "partition", p.Index, "err", fmt.Sprint(err))
				}
				pcancel()
			}
		}
	}
}
