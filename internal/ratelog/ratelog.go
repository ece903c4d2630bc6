// Package ratelog is rate-limited logging over log/slog: a line that would repeat (one per
// refused connection, one per nacked message, two per failed login) is written at most once
// per key per interval, and the next line written for a key says how many were suppressed
// since the previous one.
//
// Model: a Limiter remembers, per key, when it last wrote and how many lines it has dropped
// since. Keys are chosen by the caller and name the kind of event ("accept error",
// "refused: per-IP limit"), not its instance: a key per remote address would let a scanner
// grow the table. The table is bounded anyway (maxKeys): when it is full, entries idle for a
// whole interval are forgotten, and if none are, new keys share one overflow entry, so the
// output stays bounded whatever the keys.
//
// Counts are reported only by a key's next written line: a burst followed by silence leaves
// its count unreported, which is the price of needing no goroutine.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval of a Limiter created with interval <= 0.
const DefaultInterval = 10 * time.Second

// maxKeys bounds the table of remembered keys.
const maxKeys = 1024

// overflowKey is the entry that keys share once the table is full of recently used keys.
const overflowKey = "\x00overflow"

// SuppressedAttr is the attribute that counts the lines dropped for a key since its previous
// line.
const SuppressedAttr = "suppressed"

// Limiter writes at most one line per key per interval to its logger. Safe for concurrent use.
type Limiter struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex // guards keys
	keys map[string]*entry
}

type entry struct {
	last       time.Time // when a line was last written for the key
	suppressed int       // lines dropped since then
}

// New returns a Limiter over log that writes at most one line per key per interval
// (DefaultInterval if interval <= 0). A nil log discards everything.
func New(log *slog.Logger, interval time.Duration) *Limiter {
	return newWithClock(log, interval, time.Now)
}

func newWithClock(log *slog.Logger, interval time.Duration, now func() time.Time) *Limiter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Limiter{log: log, interval: interval, now: now, keys: map[string]*entry{}}
}

// Log writes msg with args at level unless a line was written for key less than an interval
// ago, in which case it only counts it. A line written after suppressed ones carries
// SuppressedAttr = their number. It reports whether it wrote.
func (l *Limiter) Log(ctx context.Context, level slog.Level, key, msg string, args ...any) bool {
	if !l.log.Enabled(ctx, level) {
		return false
	}
	n, ok := l.admit(key)
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args[:len(args):len(args)], SuppressedAttr, n)
	}
	l.log.Log(ctx, level, msg, args...)
	return true
}

// Warn is Log at slog.LevelWarn.
func (l *Limiter) Warn(key, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelWarn, key, msg, args...)
}

// Info is Log at slog.LevelInfo.
func (l *Limiter) Info(key, msg string, args ...any) bool {
	return l.Log(context.Background(), slog.LevelInfo, key, msg, args...)
}

// admit decides whether a line for key is written now; if so it returns how many were
// suppressed since the previous one and resets the count.
func (l *Limiter) admit(key string) (suppressed int, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			l.forgetIdle(now)
		}
		if len(l.keys) >= maxKeys {
			key = overflowKey
			e = l.keys[key]
		}
		if e == nil {
			l.keys[key] = &entry{last: now}
			return 0, true
		}
	}
	if now.Sub(e.last) < l.interval {
		e.suppressed++
		return 0, false
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return n, true
}

// forgetIdle drops the entries that have written nothing for an interval and suppressed
// nothing since: forgetting them loses no count. Called with mu held.
func (l *Limiter) forgetIdle(now time.Time) {
	for k, e := range l.keys {
		if e.suppressed == 0 && now.Sub(e.last) >= l.interval {
			delete(l.keys, k)
		}
	}
}
