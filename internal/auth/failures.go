package auth

// Brute-force slowing: each failed login from a source (an IP address) makes that source's
// next failure answer later, doubling from FailureDelayMin up to FailureDelayMax; a success
// or FailureMemory without failures forgets the source. Only failures wait: a right
// password is answered at once.

import (
	"sync"
	"time"
)

// Bounds of the per-source failure delay.
const (
	FailureDelayMin = 100 * time.Millisecond
	FailureDelayMax = 5 * time.Second
	FailureMemory   = 10 * time.Minute
	maxSources      = 10000
)

type failure struct {
	delay time.Duration
	last  time.Time
	count int // failures in a row
}

type failures struct {
	mu  sync.Mutex
	src map[string]failure
	now func() time.Time
}

func newFailures() *failures { return &failures{src: map[string]failure{}, now: time.Now} }

// FailureDelay records a failed login from source and returns how long to wait before
// answering it.
func (s *Store) FailureDelay(source string) time.Duration {
	f := s.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	e, ok := f.src[source]
	if !ok || now.Sub(e.last) > FailureMemory {
		e.delay, e.count = FailureDelayMin, 0
	} else {
		e.delay = min(e.delay*2, FailureDelayMax)
	}
	e.last = now
	e.count++
	if len(f.src) >= maxSources {
		for k, v := range f.src {
			if now.Sub(v.last) > FailureMemory {
				delete(f.src, k)
			}
		}
		if len(f.src) >= maxSources {
			clear(f.src)
		}
	}
	f.src[source] = e
	return e.delay
}

// LoginSucceeded forgets source's failures.
func (s *Store) LoginSucceeded(source string) {
	s.failures.mu.Lock()
	delete(s.failures.src, source)
	s.failures.mu.Unlock()
}

// Failures returns how many failed logins in a row source has made (within FailureMemory)
// and the delay its last one was answered after: what every listener's brute-force slowing
// is checked by.
func (s *Store) Failures(source string) (n int, delay time.Duration) {
	f := s.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.src[source]
	if !ok || f.now().Sub(e.last) > FailureMemory {
		return 0, 0
	}
	return e.count, e.delay
}
