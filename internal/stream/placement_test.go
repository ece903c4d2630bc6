package stream

import (
	"errors"
	"slices"
	"testing"
)

func TestStripeSpreadsLeadersAndReplicas(t *testing.T) {
	nodes := []int32{1, 2, 3, 4, 5}
	for start := range nodes {
		for shift := range nodes {
			as := stripe(nodes, 0, 10, 3, start, shift)
			leaders, replicas := map[int32]int{}, map[int32]int{}
			for p, rs := range as {
				if len(rs) != 3 || len(slices.Compact(slices.Sorted(slices.Values(rs)))) != 3 {
					t.Fatalf("start %d shift %d: partition %d replicas %v", start, shift, p, rs)
				}
				leaders[rs[0]]++
				for _, r := range rs {
					replicas[r]++
				}
			}
			for _, n := range nodes {
				if leaders[n] != 2 || replicas[n] != 6 {
					t.Fatalf("start %d shift %d: node %d leads %d and holds %d partitions of 10 (%v)", start, shift, n, leaders[n], replicas[n], as)
				}
			}
		}
	}
	// Kafka's example (AdminUtils): 5 brokers, 10 partitions, 3 replicas, start 0, shift 0.
	want := [][]int32{{1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {4, 5, 1}, {5, 1, 2}, {1, 3, 4}, {2, 4, 5}, {3, 5, 1}, {4, 1, 2}, {5, 2, 3}}
	if got := stripe(nodes, 0, 10, 3, 0, 0); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("stripe: %v, want %v", got, want)
	}
}

func TestPlaceChecks(t *testing.T) {
	m := &Manager{cfg: Config{NodeID: 1}}
	m.SetClusterNodes([]uint64{3, 1, 2})
	for _, c := range []struct {
		pl   Placement
		n    int32
		want error
		rf   int
	}{
		{Placement{ReplicationFactor: -1}, 4, nil, 3},
		{Placement{ReplicationFactor: 2}, 4, nil, 2},
		{Placement{ReplicationFactor: 4}, 1, ErrInvalidReplicationFactor, 0},
		{Placement{ReplicationFactor: 0}, 1, ErrInvalidReplicationFactor, 0},
		{Placement{Assignment: [][]int32{{1, 2}, {3, 1}}}, 2, nil, 2},
		{Placement{Assignment: [][]int32{{1, 4}}}, 1, ErrInvalidReplicaAssignment, 0},
		{Placement{Assignment: [][]int32{{1, 1}}}, 1, ErrInvalidReplicaAssignment, 0},
		{Placement{Assignment: [][]int32{{1, 2}, {3}}}, 2, ErrInvalidReplicaAssignment, 0},
		{Placement{Assignment: [][]int32{{}}}, 1, ErrInvalidReplicaAssignment, 0},
	} {
		as, err := m.place(0, c.n, c.pl)
		if !errors.Is(err, c.want) || (err == nil && (len(as) != int(c.n) || len(as[0]) != c.rf)) {
			t.Errorf("place(%+v): %v, %v", c.pl, as, err)
		}
	}
	// A single node: one replica, itself.
	single := &Manager{cfg: Config{NodeID: 7}}
	if as, err := single.place(0, 2, Placement{ReplicationFactor: -1}); err != nil || !slices.EqualFunc(as, [][]int32{{7}, {7}}, slices.Equal) {
		t.Fatalf("single node: %v, %v", as, err)
	}
	if _, err := single.place(0, 1, Placement{ReplicationFactor: 2}); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("single node, 2 replicas: %v", err)
	}
	// A topic without recorded placement is on every node.
	if !hosts(nil, 3, 0) || !hosts(replicaLists{{1, 2}}, 1, 0) || hosts(replicaLists{{1, 2}}, 3, 0) {
		t.Fatal("hosts")
	}
}
