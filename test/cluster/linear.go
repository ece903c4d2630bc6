package cluster

import (
	"fmt"
	"math"
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
	call, ret int64 // unix nanoseconds; ret is math.MaxInt64 for a produce never acknowledged
}

// LinResult is the verdict on one history.
type LinResult struct {
	Ops     int    // operations checked: acknowledged records at their offset, failed ones found in the log
	Illegal string // the first violation, "" if the history is linearizable
	// Porcupine is porcupine's verdict on the partitions small enough for it (at most
	// porcupineMax operations): it must agree with the exact check.
	Porcupine        porcupine.CheckResult
	PorcupineChecked int // partitions porcupine checked
	PorcupineSkipped int // partitions with too many operations for porcupine
}

// OK is a linearizable history on which porcupine, where it ran, agreed.
func (r LinResult) OK() bool {
	return r.Illegal == "" && (r.PorcupineChecked == 0 || r.Porcupine == porcupine.Ok)
}

func (r LinResult) String() string {
	v := "yes"
	if r.Illegal != "" {
		v = "NO: " + r.Illegal
	}
	p := "porcupine not run"
	if r.PorcupineChecked > 0 {
		p = fmt.Sprintf("porcupine on %d partitions: %s", r.PorcupineChecked, porcupineName(r.Porcupine))
	}
	if r.PorcupineSkipped > 0 {
		p += fmt.Sprintf(", %d partitions too big for it", r.PorcupineSkipped)
	}
	return fmt.Sprintf("%s (%d operations; %s)", v, r.Ops, p)
}

func porcupineName(r porcupine.CheckResult) string {
	switch r {
	case porcupine.Ok:
		return "ok"
	case porcupine.Illegal:
		return "ILLEGAL"
	}
	return "unknown (timed out)"
}

// Linearizable checks that each partition behaved as one log: every append takes effect at
// one instant between its call and its acknowledgement, in offset order, and returns its
// offset. The history is the acknowledged records found at their offsets and the failed ones
// found in the log (at their first occurrence; a failed record not written never took effect
// and is left out). Acknowledged records not at their offset are Check's losses.
//
// The check is exact and O(n log n). The model (a count of the appends that took effect; an
// append is legal only when that count is its position's rank) accepts exactly one order of a
// partition's operations: by position. A history is linearizable iff some order accepted by the
// model respects real time (an operation that returned before another was called comes first),
// so here iff the position order respects it: no operation returned before an operation at a
// lower position was called. That is one sweep in position order keeping the latest call so
// far. A call and a return at the same instant count as concurrent, as in porcupine.
// Partitions are independent logs (porcupine's Partition does the same split).
//
// porcupine's general search on the same model keeps a bitset of the linearized operations per
// visited state, quadratic in memory: it did not finish on 1.1M operations. It still runs, as a
// cross-check, on every partition with at most porcupineMax operations (within timeout each),
// and a disagreement fails the check (LinResult.OK).
func Linearizable(acks []Ack, failures []Failure, got map[int32]map[int64]string, porcupineMax int, timeout time.Duration) (LinResult, error) {
	first := map[string]int64{} // id -> its first offset in its partition
	for _, recs := range got {
		for o, v := range recs {
			if f, ok := first[v]; !ok || o < f {
				first[v] = o
			}
		}
	}
	byPart := map[int32][]*appendOp{}
	for _, a := range acks {
		if got[a.Partition][a.Offset] != a.ID {
			continue
		}
		byPart[a.Partition] = append(byPart[a.Partition], &appendOp{partition: a.Partition, id: a.ID, offset: a.Offset, pos: a.Offset,
			call: a.Call.UnixNano(), ret: a.At.UnixNano()})
	}
	for _, f := range failures {
		if o, ok := first[f.ID]; ok {
			byPart[f.Partition] = append(byPart[f.Partition], &appendOp{partition: f.Partition, id: f.ID, offset: -1, pos: o,
				call: f.Call.UnixNano(), ret: math.MaxInt64})
		}
	}
	var res LinResult
	parts := make([]int32, 0, len(byPart))
	for p, ops := range byPart {
		parts = append(parts, p)
		res.Ops += len(ops)
		slices.SortFunc(ops, func(a, b *appendOp) int { return compareInt64(a.pos, b.pos) })
		for k := range ops {
			if k > 0 && ops[k].pos == ops[k-1].pos {
				return LinResult{Ops: res.Ops, Illegal: fmt.Sprintf("partition %d: two operations at offset %d (%s, %s)", p, ops[k].pos, ops[k-1].id, ops[k].id)},
					fmt.Errorf("partition %d: two operations at offset %d", p, ops[k].pos)
			}
			ops[k].rank = k
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		if v := realTimeViolation(byPart[p]); v != "" && res.Illegal == "" {
			res.Illegal = fmt.Sprintf("partition %d: %s", p, v)
		}
	}

	res.Porcupine = porcupine.Ok
	for _, p := range parts {
		ops := byPart[p]
		if len(ops) > porcupineMax {
			res.PorcupineSkipped++
			continue
		}
		res.PorcupineChecked++
		if r := porcupine.CheckOperationsTimeout(appendModel, porcupineOps(ops), timeout); r != porcupine.Ok && res.Porcupine != porcupine.Illegal {
			res.Porcupine = r
		}
	}
	return res, nil
}

// realTimeViolation is the first operation, in position order, that returned before an
// operation at a lower position was called, described; "" if none.
func realTimeViolation(ops []*appendOp) string {
	var latest *appendOp // the latest call among the operations at lower positions
	for _, op := range ops {
		if latest != nil && op.ret < latest.call {
			return fmt.Sprintf("%s at offset %d was acknowledged %v before %s, at the lower offset %d, was produced",
				op.id, op.pos, time.Duration(latest.call-op.ret), latest.id, latest.pos)
		}
		if latest == nil || op.call > latest.call {
			latest = op
		}
	}
	return ""
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendModel is the log model for porcupine: the state is how many of the partition's
// operations took effect.
var appendModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in, n := input.(*appendOp), state.(int)
		return in.rank == n && (in.offset < 0 || in.offset == output.(int64)), n + 1
	},
	DescribeOperation: func(input, output any) string {
		in := input.(*appendOp)
		return fmt.Sprintf("append %s -> %d@%d", in.id, in.partition, output)
	},
}

func porcupineOps(ops []*appendOp) []porcupine.Operation {
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		out[i] = porcupine.Operation{Input: op, Output: op.offset, Call: op.call, Return: op.ret}
	}
	return out
}
