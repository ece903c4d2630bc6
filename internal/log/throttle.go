package log

import (
	"context"
	"sync"
	"time"
)

// Throttle bounds the bytes per second that the cleaners sharing it read and write (Kafka's
// log.cleaner.io.max.bytes.per.second). A nil *Throttle does not throttle.
type Throttle struct {
	rate float64 // bytes per second

	mu sync.Mutex
	at time.Time // when the bytes granted so far will have been earned
}

// throttleBurst is how much unused time a throttle lets accumulate as credit.
const throttleBurst = 100 * time.Millisecond

// NewThrottle returns a throttle of bytesPerSecond, or nil (no throttling) if it is not positive.
func NewThrottle(bytesPerSecond int64) *Throttle {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &Throttle{rate: float64(bytesPerSecond)}
}

// Wait takes n bytes from the throttle, sleeping as long as the rate requires.
func (t *Throttle) Wait(ctx context.Context, n int) error {
	if t == nil || n <= 0 {
		return ctx.Err()
	}
	now := time.Now()
	t.mu.Lock()
	if t.at.Before(now.Add(-throttleBurst)) {
		t.at = now.Add(-throttleBurst)
	}
	t.at = t.at.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	d := t.at.Sub(now)
	t.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
