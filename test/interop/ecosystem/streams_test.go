package ecosystem_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// vocabulary of the word count's input.
var vocabulary = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima")

// line is input line i: five words of the vocabulary, chosen so that counts differ per word.
func line(i int) string {
	w := make([]string, 5)
	for j := range w {
		w[j] = vocabulary[(i*7+j*j*3+j)%len(vocabulary)]
	}
	return strings.Join(w, " ")
}

// wantCounts is every word's count in lines 0..n-1.
func wantCounts(n int) map[string]int64 {
	m := map[string]int64{}
	for i := range n {
		for _, w := range strings.Fields(line(i)) {
			m[w]++
		}
	}
	return m
}

// TestStreamsWordCount runs a Kafka Streams 4.4 word count (java/WordCount: groupBy word ->
// repartition topic -> count() in a RocksDB store with a compacted changelog -> output topic),
// which creates its internal topics itself, with each processing guarantee. Input arrives in
// three parts: yard is killed with SIGKILL and restarted right after the second, and the
// application is restarted with its local state wiped (so it restores the store from the
// changelog) before the third. At the end, read with read_committed, every word's last count
// is exact under exactly_once_v2, whose output is also exactly 1, 2, ..., n per word (no
// duplicate, no aborted write visible); under at_least_once nothing is lost (counts may exceed
// the truth, as Kafka allows when a crash makes it reprocess input).
func TestStreamsWordCount(t *testing.T) {
	for _, guarantee := range []string{"at_least_once", "exactly_once_v2"} {
		t.Run(guarantee, func(t *testing.T) {
			needJava(t)
			t.Parallel()
			wordCount(t, guarantee)
		})
	}
}

// countsReader follows the output topic (read_committed) and keeps every word's counts.
type countsReader struct {
	mu  sync.Mutex
	seq map[string][]int64
	err error
}

func (r *countsReader) last() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int64{}
	for w, s := range r.seq {
		m[w] = s[len(s)-1]
	}
	return m
}

func followCounts(t *testing.T, addr, topic string) *countsReader {
	t.Helper()
	r := &countsReader{seq: map[string][]int64{}}
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			r.mu.Lock()
			fs.EachRecord(func(rec *kgo.Record) {
				if len(rec.Value) != 8 {
					r.err = fmt.Errorf("count of %q is %d bytes, want a long", rec.Key, len(rec.Value))
					return
				}
				w := string(rec.Key)
				r.seq[w] = append(r.seq[w], int64(binary.BigEndian.Uint64(rec.Value)))
			})
			r.mu.Unlock()
		}
	}()
	return r
}

// compare says how got differs from want ("" if every word's count is equal, or with
// atLeast, at least want's).
func compare(got, want map[string]int64, atLeast bool) string {
	var diff []string
	for w, n := range want {
		if g := got[w]; g < n || (!atLeast && g != n) {
			diff = append(diff, fmt.Sprintf("%s=%d (want %d)", w, g, n))
		}
	}
	for w := range got {
		if _, ok := want[w]; !ok {
			diff = append(diff, fmt.Sprintf("unexpected word %q", w))
		}
	}
	sort.Strings(diff)
	return strings.Join(diff, ", ")
}

func produceLines(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(line(i))})
	}
	if err := cl.ProduceSync(ctxTimeout(t, time.Minute), recs...).FirstErr(); err != nil {
		t.Fatalf("cannot produce lines %d..%d: %v", from, to-1, err)
	}
}

func wordCount(t *testing.T, guarantee string) {
	y := startYard(t)
	const input, output, partitions = "lines", "word-counts", 3
	appID := "wordcount-" + strings.ReplaceAll(guarantee, "_", "-")
	cl := client(t, y.KafkaAddr, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(ctxTimeout(t, 30*time.Second), partitions, 1, nil, input, output); err != nil {
		t.Fatal(err)
	}
	const part = 100 // lines per part of the input
	produceLines(t, cl, input, 0, part)

	app := startJVM(t, "wordcount", "dev.yard.ecosystem.WordCount",
		y.KafkaAddr, appID, guarantee, input, output, filepath.Join(t.TempDir(), "state"))
	app.waitLine("STATE RUNNING", 2*time.Minute)
	counts := followCounts(t, y.KafkaAddr, output)
	atLeast := guarantee == "at_least_once"
	reach := func(n int) {
		t.Helper()
		want := wantCounts(n)
		eventually(t, 2*time.Minute, func() bool { return compare(counts.last(), want, atLeast) == "" },
			func() string { return fmt.Sprintf("counts of %d lines: %s", n, compare(counts.last(), want, atLeast)) })
	}
	reach(part)

	// Part two, and yard dies while the application processes it.
	produceLines(t, cl, input, part, 2*part)
	y.Kill()
	y.Restart()
	reach(2 * part)

	// The application restarts from nothing local: the store comes back from its changelog.
	app.send("restart")
	app.waitLine("WIPED", time.Minute)
	app.waitLine("STATE RUNNING", 2*time.Minute)
	produceLines(t, cl, input, 2*part, 3*part)
	reach(3 * part)
	app.send("stop")
	app.waitLine("STOPPED", time.Minute)
	app.wait(30 * time.Second)
	app.checkNoUncaught()

	// The whole output once more, now that the application has closed.
	final := followCounts(t, y.KafkaAddr, output)
	want := wantCounts(3 * part)
	eventually(t, time.Minute, func() bool { return compare(final.last(), want, atLeast) == "" },
		func() string { return "final counts: " + compare(final.last(), want, atLeast) })
	final.mu.Lock()
	defer final.mu.Unlock()
	if final.err != nil {
		t.Fatal(final.err)
	}
	var over []string
	for w, s := range final.seq {
		if !atLeast {
			for i, n := range s {
				if n != int64(i+1) {
					t.Errorf("exactly_once_v2: %s's counts are %v, want 1..%d once each", w, s, want[w])
					break
				}
			}
		}
		if n := s[len(s)-1]; n > want[w] {
			over = append(over, fmt.Sprintf("%s=%d/%d", w, n, want[w]))
		}
	}
	sort.Strings(over)
	t.Logf("%s: %d words, %d input lines; counted beyond the truth (reprocessed after the crash): %v", guarantee, len(want), 3*part, over)
	checkInternalTopics(t, adm, appID)
}

// checkInternalTopics checks the topics Kafka Streams created for itself: the changelog is
// compacted, the repartition topic is a delete topic Streams purges.
func checkInternalTopics(t *testing.T, adm *kadm.Client, appID string) {
	t.Helper()
	changelog, repartition := appID+"-counts-changelog", appID+"-words-repartition"
	rcs, err := adm.DescribeTopicConfigs(ctxTimeout(t, 30*time.Second), changelog, repartition)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			t.Errorf("%s: %v", rc.Name, rc.Err)
			continue
		}
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				policy = c.MaybeValue()
			}
		}
		want := "delete"
		if rc.Name == changelog {
			want = "compact"
		}
		if policy != want {
			t.Errorf("%s: cleanup.policy=%q, want %q", rc.Name, policy, want)
		}
	}
}
