package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// history is a synthetic run: what the producers saw and the log read back.
type history struct {
	acks     []Ack
	failures []Failure
	got      map[int32]map[int64]string
	end      map[int32]int64
}

// legalHistory is n produces over parts partitions from producers keeping ~inflight produces
// outstanding: each takes effect at an instant between its call and its return, in the order of
// those instants, so the history is linearizable. About one in 500 fails (no return); half of
// those were written anyway.
func legalHistory(rng *rand.Rand, n, parts, inflight int) history {
	base := time.Unix(1_700_000_000, 0)
	type ev struct {
		part            int32
		id              string
		call, eff, ret  int64
		failed, written bool
	}
	evs := make([]ev, n)
	for i := range evs {
		call := int64(i) * 1000 // one call per µs
		eff := call + rng.Int64N(int64(inflight)*1000)
		e := ev{part: int32(i % parts), id: fmt.Sprintf("p%d-%d", i%3, i), call: call, eff: eff,
			ret: eff + rng.Int64N(int64(inflight)*1000)}
		if rng.IntN(500) == 0 {
			e.failed, e.written = true, rng.IntN(2) == 0
		}
		evs[i] = e
	}
	slices.SortFunc(evs, func(a, b ev) int { return compareInt64(a.eff, b.eff) })
	h := history{got: map[int32]map[int64]string{}, end: map[int32]int64{}}
	for p := range int32(parts) {
		h.got[p] = map[int64]string{}
	}
	for _, e := range evs {
		if e.failed {
			h.failures = append(h.failures, Failure{Partition: e.part, ID: e.id, Call: base.Add(time.Duration(e.call))})
			if !e.written {
				continue
			}
		}
		o := h.end[e.part]
		h.got[e.part][o] = e.id
		h.end[e.part] = o + 1
		if !e.failed {
			h.acks = append(h.acks, Ack{Partition: e.part, Offset: o, ID: e.id, Call: base.Add(time.Duration(e.call)), At: base.Add(time.Duration(e.ret))})
		}
	}
	return h
}

func (h history) check(t *testing.T) (Report, LinResult) {
	t.Helper()
	start := time.Now()
	rep := Check(h.acks, h.got, h.end, func(string) bool { return true })
	mid := time.Now()
	lin, err := Linearizable(h.acks, h.failures, h.got, porcupineMax, time.Minute)
	if err != nil {
		lin.Illegal = err.Error()
	}
	t.Logf("%d acks, %d failures: offsets checked in %v, linearizability in %v: %s", len(h.acks), len(h.failures),
		mid.Sub(start).Round(time.Millisecond), time.Since(mid).Round(time.Millisecond), lin)
	return rep, lin
}

// TestLinearizableBigHistories checks a legal history of the size of a 100-round fault run
// (porcupine alone did not finish on 1.1M operations), then finds each kind of broken promise
// planted in a smaller one.
func TestLinearizableBigHistories(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	if !testing.Short() {
		big := legalHistory(rng, 1_500_000, 3, 60)
		if rep, lin := big.check(t); !rep.OK() || !lin.OK() || lin.PorcupineSkipped != 3 {
			t.Fatalf("legal history: %+v, %s", rep, lin)
		}
	}
	h := legalHistory(rng, 200_000, 3, 60)
	rep, lin := h.check(t)
	if !rep.OK() || !lin.OK() || lin.PorcupineSkipped != 3 {
		t.Fatalf("legal history: %+v, %s", rep, lin)
	}

	// An acknowledged record lost: another record at its offset.
	lost := h
	lost.got = cloneGot(h.got)
	a := h.acks[len(h.acks)/2]
	lost.got[a.Partition][a.Offset] = "other"
	if rep, _ := lost.check(t); rep.Lost != 1 {
		t.Errorf("lost record: %+v", rep)
	}

	// Two acknowledgements of one offset.
	two := h
	two.acks = slices.Clone(h.acks)
	b := two.acks[len(two.acks)/3]
	b.ID = "twin"
	two.acks = append(two.acks, b)
	if rep, _ := two.check(t); rep.Conflicts != 1 {
		t.Errorf("two records at one offset: %+v", rep)
	}
	// One acknowledgement reported twice: two operations at one offset.
	twice := h
	twice.acks = append(slices.Clone(h.acks), h.acks[len(h.acks)/3])
	if _, lin := twice.check(t); lin.OK() || !strings.Contains(lin.Illegal, "two operations at offset") {
		t.Errorf("one acknowledgement twice: %s", lin)
	}

	// Offsets consistent but against real time: an early record and one produced long after it
	// was acknowledged swap places, so the later one sits below it. Check sees nothing wrong.
	swapped := h
	swapped.got = cloneGot(h.got)
	swapped.acks = slices.Clone(h.acks)
	i := len(h.acks) / 4
	j := i + 1
	for swapped.acks[j].Partition != swapped.acks[i].Partition || !swapped.acks[j].Call.After(swapped.acks[i].At) {
		j++
	}
	x, y := &swapped.acks[i], &swapped.acks[j]
	x.Offset, y.Offset = y.Offset, x.Offset
	swapped.got[x.Partition][x.Offset], swapped.got[y.Partition][y.Offset] = x.ID, y.ID
	rep, lin = swapped.check(t)
	if !rep.OK() || lin.Illegal == "" || !strings.Contains(lin.Illegal, y.ID) {
		t.Errorf("acknowledged before an earlier offset's produce was called: %+v, %s", rep, lin)
	}

	// A failed produce written below a record acknowledged before it was called.
	late := h
	late.got = cloneGot(h.got)
	late.failures = slices.Clone(h.failures)
	c := h.acks[len(h.acks)/5]
	late.got[c.Partition][c.Offset] = "late"
	late.failures = append(late.failures, Failure{Partition: c.Partition, ID: "late", Call: h.acks[len(h.acks)-1].At})
	late.acks = slices.DeleteFunc(slices.Clone(h.acks), func(a Ack) bool { return a.ID == c.ID })
	if rep, lin := late.check(t); !rep.OK() || !strings.Contains(lin.Illegal, "late") {
		t.Errorf("failed produce taking effect before its call: %+v, %s", rep, lin)
	}
}

func cloneGot(got map[int32]map[int64]string) map[int32]map[int64]string {
	c := map[int32]map[int64]string{}
	for p, recs := range got {
		c[p] = make(map[int64]string, len(recs))
		for o, v := range recs {
			c[p][o] = v
		}
	}
	return c
}

// TestLinearizableAgreesWithPorcupine compares the exact check with porcupine's search on small
// random histories, legal or not, with and without failed produces.
func TestLinearizableAgreesWithPorcupine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Unix(1_700_000_000, 0)
	legal, illegal := 0, 0
	for range 3000 {
		n := 1 + rng.IntN(12)
		var h history
		h.got = map[int32]map[int64]string{0: {}}
		for o, k := range rng.Perm(n) {
			id := fmt.Sprint("r", k)
			h.got[0][int64(o)] = id
			call := rng.Int64N(100)
			if rng.IntN(6) == 0 {
				h.failures = append(h.failures, Failure{ID: id, Call: base.Add(time.Duration(call))})
				continue
			}
			h.acks = append(h.acks, Ack{Offset: int64(o), ID: id, Call: base.Add(time.Duration(call)), At: base.Add(time.Duration(call + rng.Int64N(60)))})
		}
		if rng.IntN(4) == 0 { // a failed produce never written
			h.failures = append(h.failures, Failure{ID: "unwritten", Call: base})
		}
		lin, err := Linearizable(h.acks, h.failures, h.got, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if lin.PorcupineChecked != 1 || (lin.Illegal == "") != (lin.Porcupine == porcupine.Ok) {
			t.Fatalf("exact check and porcupine disagree: %s\nacks %+v\nfailures %+v", lin, h.acks, h.failures)
		}
		if lin.Illegal == "" {
			legal++
		} else {
			illegal++
		}
	}
	t.Logf("%d legal, %d illegal histories", legal, illegal)
	if legal < 100 || illegal < 100 {
		t.Errorf("too few of a kind: %d legal, %d illegal", legal, illegal)
	}
}
