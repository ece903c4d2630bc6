package kafka_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// TestKill9MidCompaction: a franz-go producer (acks=all, idempotent, zstd) keeps updating 40
// keys of a cleanup.policy=compact topic with small segments, three records a batch (so the
// cleaner rewrites batches that lose some records, recompressed), with a tombstone among them
// now and then (whose delete horizon the cleaner writes), while the yard process is killed with
// SIGKILL each time a cleaning is in flight (a ".cleaned" or ".swap" file is in the partition
// directory), three times, and restarted. Afterwards, and once the cleaner has run again, a
// consumer from the start finds for every key a record (value or tombstone) at least as new as
// the newest one acknowledged, and no key's records out of production order (each record
// carries its production number in a header).
func TestKill9MidCompaction(t *testing.T) {
	// A slow cleaner (1 MiB/s) over 16 KiB segments makes each cleaning last long enough to
	// be caught in the act.
	y := harness.Start(t, harness.WithArgs("--log-cleaner-backoff", "20ms",
		"--log-cleaner-io-max-bytes-per-second", "1048576"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic, keys, kills = "changelog", 40, 3

	adm := kadm.NewClient(newClient(t, y.KafkaAddr))
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy":            kadm.StringPtr("compact"),
		"segment.bytes":             kadm.StringPtr("16384"),
		"segment.ms":                kadm.StringPtr("200"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.1"),
	}, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, y.KafkaAddr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.RequestRetries(1000),
		kgo.RetryTimeout(2*time.Minute),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()),
	)
	pad := strings.Repeat(".", 200)
	var mu sync.Mutex
	newest := map[string]int{} // key -> newest acknowledged sequence number
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i += 3 {
			select {
			case <-stop:
				return
			default:
			}
			var recs []*kgo.Record
			for n := i; n < i+3; n++ {
				k := fmt.Sprintf("key-%02d", n%keys)
				rec := &kgo.Record{Key: []byte(k), Value: []byte(strconv.Itoa(n) + pad),
					Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(n))}}}
				if n%13 == 0 {
					rec.Value = nil // a tombstone
				}
				recs = append(recs, rec)
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				if ctx.Err() != nil {
					return
				}
				continue // not acknowledged: nothing is promised
			}
			mu.Lock()
			for n, r := range recs {
				newest[string(r.Key)] = max(newest[string(r.Key)], i+n)
			}
			mu.Unlock()
		}
	}()

	partDir := filepath.Join(y.DataDir, "topics", topic+"-0")
	inFlight := func() bool {
		for _, pat := range []string{"*.cleaned", "*.swap"} {
			if m, _ := filepath.Glob(filepath.Join(partDir, pat)); len(m) > 0 {
				return true
			}
		}
		return false
	}
	for kill := range kills {
		for !inFlight() {
			select {
			case <-ctx.Done():
				t.Fatalf("no cleaning seen before kill %d", kill+1)
			case <-time.After(time.Millisecond):
			}
		}
		mu.Lock()
		t.Logf("kill -9 #%d mid-cleaning, %d keys acknowledged", kill+1, len(newest))
		mu.Unlock()
		y.Kill()
		y.Restart()
	}
	// One more cleaning completes after the last restart (the counter starts at 0 there). The
	// producer goes on until then: a kill that fell after a cleaning's swap was prepared
	// leaves nothing dirty once start-up finishes the swap, and only new updates make more.
	// It also goes on until every key has an acknowledged value: on a loaded machine the kills
	// can come before the producer has reached them all.
	allKeys := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(newest) == keys
	}
	for metric(t, y.HTTPAddr, "yard_log_cleaner_cleanings_total") < 1 || !allKeys() {
		select {
		case <-ctx.Done():
			t.Fatalf("no cleaning after the last restart, or not every key acknowledged (%v)", allKeys())
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()

	hw := highWatermark(t, ctx, adm, topic)
	cons := newClient(t, y.KafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	last := map[string]int{}
	for off := int64(-1); off < hw-1; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			off = r.Offset
			if len(r.Headers) != 1 {
				t.Fatalf("record at %d: headers %v", r.Offset, r.Headers)
			}
			i, err := strconv.Atoi(string(r.Headers[0].Value))
			if err != nil || (r.Value != nil && string(r.Value) != strconv.Itoa(i)+pad) {
				t.Fatalf("record at %d: value %q, header %q", r.Offset, r.Value, r.Headers[0].Value)
			}
			if prev, ok := last[string(r.Key)]; ok && i <= prev {
				t.Fatalf("key %s: value %d at offset %d after value %d", r.Key, i, r.Offset, prev)
			}
			last[string(r.Key)] = i
		})
	}
	for k, want := range newest {
		if got, ok := last[k]; !ok || got < want {
			t.Errorf("key %s: newest value read %d (present %v), but %d was acknowledged", k, got, ok, want)
		}
	}
	t.Logf("cleanings finished: %d; interrupted ones found at start-up: %d swaps finished, %d outputs removed",
		strings.Count(y.Log(), "cleaned segments"), strings.Count(y.Log(), "finishing interrupted swap"),
		strings.Count(y.Log(), "removing interrupted cleaning output"))
	for _, bad := range []string{"cleaning failed", "log failed"} {
		if strings.Contains(y.Log(), bad) {
			t.Errorf("yard logged %q", bad)
		}
	}
	if len(newest) != keys {
		t.Errorf("only %d of %d keys acknowledged", len(newest), keys)
	}
}

func highWatermark(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset: %+v", o)
	}
	return o.Offset
}

// metric reads one unlabelled value from yard's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}
