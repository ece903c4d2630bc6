package stream

import (
	"slices"
	"testing"
)

// TestAdoptedReplicas: an adopted topic's partitions get min(3, nodes) distinct replicas, the
// adopting node (which holds the logs) first, the others spread.
func TestAdoptedReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nodes []int32
		node  int32
		rf    int
	}{{[]int32{1}, 1, 1}, {[]int32{1, 2}, 2, 2}, {[]int32{1, 2, 3}, 1, 3}, {[]int32{1, 2, 3, 4, 5}, 3, 3}} {
		got := adoptedReplicas(tc.nodes, tc.node, 7)
		seen := map[int32]int{}
		for i, rs := range got {
			if len(rs) != tc.rf || rs[0] != tc.node {
				t.Fatalf("nodes %v, node %d: partition %d replicas %v", tc.nodes, tc.node, i, rs)
			}
			s := slices.Clone(rs)
			slices.Sort(s)
			if len(slices.Compact(s)) != tc.rf {
				t.Fatalf("partition %d: replicas %v not distinct", i, rs)
			}
			for _, r := range rs[1:] {
				seen[r]++
			}
		}
		if tc.rf > 1 && len(seen) != len(tc.nodes)-1 {
			t.Fatalf("nodes %v: followers placed on %v only", tc.nodes, seen)
		}
	}
}
