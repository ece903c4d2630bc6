package auth

// Brute-force slowing. Failed logins are counted per source (an IP address) and per user
// name; each key's delay doubles with its failures, from FailureDelayMin up to
// FailureDelayMax, and FailureMemory without failures forgets it.
//
// The delay is not per connection: every key keeps the time its next answer may be given
// (next), and an answer waits for the later of its source's and its user's, then pushes
// both on by the delay when it fails. Answers to attempts made side by side on many
// connections therefore come one after the other, each a delay after the previous one, so
// N parallel connections learn no more results per second than one connection does. A
// right password waits in the same queue while its source or user has failures (answered
// at once otherwise): were it answered at once, an attacker could tell a success from a
// failure by the answer's timing alone, without waiting for the failure's delay.
//
// The queue is bounded: an attempt arriving while its answer would have to wait more than
// FailureQueueMax is shed: answered as a failure after FailureQueueMax whatever its
// password (LoginSucceeded says so), and not counted. Its answer tells nothing, so
// connections opened faster than the queue drains gain no guesses, and an attack stops
// locking the source and user out FailureQueueMax after it ends.
//
// A success forgets only the failures of the user that logged in (the user's own key and
// the source's failures for that name): logging in with an account of one's own does not
// reset the slowing of guesses at others' accounts from the same source.

import (
	"sync"
	"time"
)

// Bounds of the failure delay.
const (
	FailureDelayMin = 100 * time.Millisecond
	FailureDelayMax = 5 * time.Second
	FailureMemory   = 10 * time.Minute
	FailureQueueMax = 30 * time.Second
	maxSources      = 10000
	maxNamesPerSrc  = 64 // user names a source's failures are attributed to; more share ""
)

type failure struct {
	last   time.Time      // last failure
	next   time.Time      // the earliest time the key's next answer may be given
	count  int            // failures in a row
	delay  time.Duration  // the delay the last failure was answered after
	byUser map[string]int // a source's failures per user name
}

type failures struct {
	mu   sync.Mutex
	keys map[string]*failure // "ip:"+source, "user:"+name
	now  func() time.Time
}

func newFailures() *failures { return &failures{keys: map[string]*failure{}, now: time.Now} }

func srcKey(source string) string { return "ip:" + source }
func userKey(user string) string  { return "user:" + user }

// delayFor is the delay of a key with count failures.
func delayFor(count int) time.Duration {
	d := FailureDelayMin
	for i := 1; i < count && d < FailureDelayMax; i++ {
		d *= 2
	}
	return min(d, FailureDelayMax)
}

// get returns k's live entry (nil if none or forgotten); f.mu held.
func (f *failures) get(k string, now time.Time) *failure {
	e := f.keys[k]
	if e != nil && now.Sub(e.last) > FailureMemory && !e.next.After(now) {
		delete(f.keys, k)
		return nil
	}
	return e
}

// slot is the time an answer for source and user may be given now; f.mu held.
func (f *failures) slot(source, user string, now time.Time) time.Time {
	at := now
	for _, k := range [...]string{srcKey(source), userKey(user)} {
		if e := f.get(k, now); e != nil && e.next.After(at) {
			at = e.next
		}
	}
	return at
}

// FailureDelay records a failed login for user from source and returns how long to wait
// before answering it: until the source's and the user's earlier answers are given, plus
// the larger of their delays (FailureQueueMax, not counted, when that wait is too long).
func (s *Store) FailureDelay(source, user string) time.Duration {
	f := s.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.bound(now)
	at := f.slot(source, user, now)
	if at.Sub(now) > FailureQueueMax {
		return FailureQueueMax
	}
	var delay time.Duration
	es := [2]*failure{}
	for i, k := range [...]string{srcKey(source), userKey(user)} {
		e := f.get(k, now)
		if e == nil {
			e = &failure{}
			f.keys[k] = e
		}
		e.count++
		e.last = now
		delay = max(delay, delayFor(e.count))
		es[i] = e
	}
	src := es[0]
	if src.byUser == nil {
		src.byUser = map[string]int{}
	}
	name := user
	if _, ok := src.byUser[name]; !ok && len(src.byUser) >= maxNamesPerSrc {
		name = ""
	}
	src.byUser[name]++
	at = at.Add(delay)
	for _, e := range es {
		e.next, e.delay = at, delay
	}
	return at.Sub(now)
}

// bound keeps the table within maxSources keys; f.mu held.
func (f *failures) bound(now time.Time) {
	if len(f.keys) < maxSources {
		return
	}
	for k := range f.keys {
		f.get(k, now)
	}
	if len(f.keys) >= maxSources {
		clear(f.keys)
	}
}

// LoginSucceeded records a right password of user from source and returns how long to
// wait before answering, zero unless the source or the user has failures whose answers are
// queued, and whether to answer it as a success: false when the queue is too long
// (FailureQueueMax), the attempt then being answered as a failure. A success forgets the
// user's failures (under its name, and the source's for that name; the source's failures
// for other names stay).
func (s *Store) LoginSucceeded(source, user string) (time.Duration, bool) {
	f := s.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	at := f.slot(source, user, now)
	if at.Sub(now) > FailureQueueMax {
		return FailureQueueMax, false
	}
	if e := f.get(srcKey(source), now); e != nil {
		if n := e.byUser[user]; n > 0 {
			delete(e.byUser, user)
			e.count = max(e.count-n, 0)
			if e.count == 0 {
				delete(f.keys, srcKey(source))
			}
		}
	}
	delete(f.keys, userKey(user))
	return at.Sub(now), true
}

// ForgetFailures forgets every source's and user's failures.
func (s *Store) ForgetFailures() {
	s.failures.mu.Lock()
	clear(s.failures.keys)
	s.failures.mu.Unlock()
}

// Failures returns how many failed logins in a row source has made (within FailureMemory)
// and the delay its last one was answered after (not counting the wait for the source's
// earlier answers): what every listener's brute-force slowing is checked by.
func (s *Store) Failures(source string) (n int, delay time.Duration) {
	f := s.failures
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.get(srcKey(source), f.now())
	if e == nil {
		return 0, 0
	}
	return e.count, e.delay
}
