package cluster

import (
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// appendOp is one produce: the record's id and the partition position it took in the log
// read back (pos), or -1 if it was not acknowledged (its output is unknown).
type appendOp struct {
	partition int32
	id        string
	rank      int   // pos's rank among the positions of the partition's operations
	offset    int64 // acknowledged offset, -1: not acknowledged
	pos       int64
}

// Linearizable checks with porcupine that each partition behaved as one log: every append
// takes effect at one instant between its call and its acknowledgement, in offset order, and
// returns its offset. The history is the acknowledged records found at their offsets and the
// failed ones found in the log (at their first occurrence; a failed record not written never
// took effect and is left out). Acknowledged records not at their offset are Check's losses.
func Linearizable(acks []Ack, failures []Failure, got map[int32]map[int64]string, timeout time.Duration) (porcupine.CheckResult, error) {
	first := map[string]int64{} // id -> its first offset in its partition
	for _, recs := range got {
		for o, v := range recs {
			if f, ok := first[v]; !ok || o < f {
				first[v] = o
			}
		}
	}
	end := time.Now().Add(time.Hour).UnixNano()
	var ops []porcupine.Operation
	for _, a := range acks {
		if got[a.Partition][a.Offset] != a.ID {
			continue
		}
		ops = append(ops, porcupine.Operation{Input: &appendOp{partition: a.Partition, id: a.ID, offset: a.Offset, pos: a.Offset},
			Output: a.Offset, Call: a.Call.UnixNano(), Return: a.At.UnixNano()})
	}
	for _, f := range failures {
		if o, ok := first[f.ID]; ok {
			ops = append(ops, porcupine.Operation{Input: &appendOp{partition: f.Partition, id: f.ID, offset: -1, pos: o},
				Output: int64(-1), Call: f.Call.UnixNano(), Return: end})
		}
	}
	byPart := map[int32][]int64{}
	for _, op := range ops {
		in := op.Input.(*appendOp)
		byPart[in.partition] = append(byPart[in.partition], in.pos)
	}
	for p, ps := range byPart {
		slices.Sort(ps)
		for k := 1; k < len(ps); k++ {
			if ps[k] == ps[k-1] {
				return porcupine.Illegal, fmt.Errorf("partition %d: two operations at offset %d", p, ps[k])
			}
		}
	}
	for _, op := range ops {
		in := op.Input.(*appendOp)
		in.rank, _ = slices.BinarySearch(byPart[in.partition], in.pos)
	}
	model := porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			parts := map[int32][]porcupine.Operation{}
			for _, op := range h {
				p := op.Input.(*appendOp).partition
				parts[p] = append(parts[p], op)
			}
			var out [][]porcupine.Operation
			for _, ops := range parts {
				out = append(out, ops)
			}
			return out
		},
		Init: func() any { return 0 }, // how many of the partition's operations took effect
		Step: func(state, input, output any) (bool, any) {
			in, n := input.(*appendOp), state.(int)
			return in.rank == n && (in.offset < 0 || in.offset == output.(int64)), n + 1
		},
		DescribeOperation: func(input, output any) string {
			in := input.(*appendOp)
			return fmt.Sprintf("append %s -> %d@%d", in.id, in.partition, output)
		},
	}
	return porcupine.CheckOperationsTimeout(model, ops, timeout), nil
}
