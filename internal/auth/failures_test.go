package auth

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock makes s's failure table read a clock the test moves.
func fakeClock(s *Store) *time.Time {
	now := time.Unix(1_800_000_000, 0)
	s.failures.now = func() time.Time { return now }
	return &now
}

func TestFailureDelayGrows(t *testing.T) {
	s, _ := openTemp(t)
	now := fakeClock(s)
	// One connection after the other: each answer after the previous one, the delay doubling.
	for i, want := range []time.Duration{FailureDelayMin, 2 * FailureDelayMin, 4 * FailureDelayMin} {
		d := s.FailureDelay("1.2.3.4", "bob")
		if d != want {
			t.Fatalf("failure %d: waited %v, want %v", i+1, d, want)
		}
		*now = now.Add(d)
	}
	if d := s.FailureDelay("5.6.7.8", "carol"); d != FailureDelayMin {
		t.Fatalf("another source and user: %v, want %v", d, FailureDelayMin)
	}
	// The delay caps, and FailureMemory without failures forgets.
	for range 10 {
		*now = now.Add(s.FailureDelay("1.2.3.4", "bob"))
	}
	if _, d := s.Failures("1.2.3.4"); d != FailureDelayMax {
		t.Fatalf("capped delay %v, want %v", d, FailureDelayMax)
	}
	*now = now.Add(FailureMemory + time.Second)
	if n, _ := s.Failures("1.2.3.4"); n != 0 {
		t.Fatalf("%d failures remembered after FailureMemory", n)
	}
}

// parallelFailures returns the waits of n failed logins made side by side (at one instant, from
// n goroutines), sorted.
func parallelFailures(s *Store, n int, source, user func(i int) string) []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := s.FailureDelay(source(i), user(i))
			mu.Lock()
			waits = append(waits, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(waits)
	return waits
}

// sequentialAnswers is when one connection trying n passwords one after the other gets
// its answers: each a doubling delay after the previous one.
func sequentialAnswers(n int) []time.Duration {
	var at time.Duration
	var out []time.Duration
	for i := range n {
		at += delayFor(i + 1)
		out = append(out, at)
	}
	return out
}

// Parallel connections from one source, or at one user name from many sources, get their
// answers no sooner than one connection trying the same passwords one after the other.
func TestFailuresParallelSerialized(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name         string
		source, user func(int) string
	}{
		{"one source, many users", func(int) string { return "10.0.0.1" }, func(i int) string { return "user" + string(rune('a'+i)) }},
		{"many sources, one user", func(i int) string { return "10.0.1." + string(rune('1'+i)) }, func(int) string { return "alice" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			fakeClock(s)
			got := parallelFailures(s, n, tc.source, tc.user)
			if want := sequentialAnswers(n); !slices.Equal(got, want) {
				t.Fatalf("%d failed logins side by side answered after %v, want no sooner than one connection's %v", n, got, want)
			}
		})
	}
}

// A right password from a source with queued failures waits behind them (answered at once,
// its timing would tell it from a failure); with no failures it is answered at once.
func TestSuccessWaitsBehindFailures(t *testing.T) {
	s, _ := openTemp(t)
	fakeClock(s)
	if d, ok := s.LoginSucceeded("10.0.0.1", "alice"); d != 0 || !ok {
		t.Fatalf("success without failures waited %v (%v)", d, ok)
	}
	waits := parallelFailures(s, 3, func(int) string { return "10.0.0.1" }, func(i int) string { return "user" + string(rune('a'+i)) })
	if d, ok := s.LoginSucceeded("10.0.0.1", "alice"); !ok || d < waits[len(waits)-1] {
		t.Fatalf("success answered after %v, before the queued failures (last after %v)", d, waits[len(waits)-1])
	}
}

// A success forgets only the failures of the user that logged in: an attacker holding an
// account cannot reset the slowing of its guesses at another.
func TestSuccessClearsOnlyItsUser(t *testing.T) {
	s, _ := openTemp(t)
	now := fakeClock(s)
	for range 3 {
		*now = now.Add(s.FailureDelay("10.0.0.1", "victim"))
	}
	d, _ := s.LoginSucceeded("10.0.0.1", "mallory")
	*now = now.Add(d)
	if n, _ := s.Failures("10.0.0.1"); n != 3 {
		t.Fatalf("after another user's success the source has %d failures, want 3", n)
	}
	if d := s.FailureDelay("10.0.0.1", "victim"); d != 8*FailureDelayMin {
		t.Fatalf("the 4th guess waited %v, want %v", d, 8*FailureDelayMin)
	}
	// The victim's own login clears its name's failures.
	s.LoginSucceeded("10.0.0.1", "victim")
	if n, _ := s.Failures("10.0.0.1"); n != 0 {
		t.Fatalf("after the user's own success the source has %d failures, want 0", n)
	}
}

// The queue is bounded: past FailureQueueMax an attempt is answered as a failure after
// FailureQueueMax whatever its password, and not counted; the queue then drains.
func TestFailureQueueBounded(t *testing.T) {
	s, _ := openTemp(t)
	now := fakeClock(s)
	waits := parallelFailures(s, 50, func(int) string { return "10.0.0.1" }, func(i int) string { return "u" + string(rune('a'+i)) })
	if last := waits[len(waits)-1]; last > FailureQueueMax+FailureDelayMax || !slices.Contains(waits, FailureQueueMax) {
		t.Fatalf("50 parallel failures waited %v, want some shed after %v and none past %v", waits, FailureQueueMax, FailureQueueMax+FailureDelayMax)
	}
	n, _ := s.Failures("10.0.0.1")
	if n >= 50 {
		t.Fatalf("%d failures counted, want the shed ones left out", n)
	}
	if d, ok := s.LoginSucceeded("10.0.0.1", "alice"); ok || d != FailureQueueMax {
		t.Fatalf("a right password behind a full queue: %v %v, want refused after %v", d, ok, FailureQueueMax)
	}
	*now = now.Add(time.Minute)
	if d, ok := s.LoginSucceeded("10.0.0.1", "alice"); !ok || d != 0 {
		t.Fatalf("after the queue drained: %v %v, want an answer at once", d, ok)
	}
}
