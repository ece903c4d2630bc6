package log

import (
	"sync"
	"testing"
	"time"
)

type recordingObserver struct {
	mu      sync.Mutex
	records int64
	syncs   int
}

func (o *recordingObserver) ObserveSync(_ time.Duration, records int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.records += records
	o.syncs++
}

// TestSyncObserver: every record made durable is reported once, by the group commit that
// made it durable.
func TestSyncObserver(t *testing.T) {
	t.Parallel()
	obs := &recordingObserver{}
	l, err := Open(t.TempDir(), Options{SyncPolicy: SyncAlways, SyncObserver: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 3 {
		if _, err := l.Append(makeBatch(5, 10, int64(i), byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	// The observer runs after the waiters are woken, possibly on the syncer goroutine.
	deadline := time.Now().Add(30 * time.Second)
	for {
		obs.mu.Lock()
		records, syncs := obs.records, obs.syncs
		obs.mu.Unlock()
		if records == 15 && syncs >= 1 && syncs <= 3 {
			return
		}
		if records > 15 || time.Now().After(deadline) {
			t.Fatalf("observed %d records in %d syncs, want 15 in 1..3", records, syncs)
		}
		time.Sleep(time.Millisecond)
	}
}
