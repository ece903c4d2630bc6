package ecosystem_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// TestConnectDistributed runs Kafka Connect 4.4's distributed worker (ConnectDistributed) on
// yard, with exactly.once.source.support=enabled: it creates its config, offset and status
// topics itself (Connect refuses to start unless they are compacted), and through its REST API
// a FileStreamSource (exactly once required) copies a file into a topic it creates, which a
// FileStreamSink writes back out. The worker is killed with SIGKILL while lines are being
// appended, more are appended while it is down, and a new worker resumes from the offsets it
// stored; then yard is killed with SIGKILL and restarted under the running worker. The topic
// (read_committed) holds every line exactly once and in order, and the sink's file every line
// at least once, in order.
func TestConnectDistributed(t *testing.T) {
	needJava(t)
	t.Parallel()
	y := startYard(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	const topic = "file-lines"
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "line %04d of the source file\n", i)
		}
		return b.String()
	}
	appendFile(t, in, lines(0, 100))

	rest := freePort(t)
	props := filepath.Join(dir, "worker.properties")
	worker := map[string]string{
		"bootstrap.servers":                 y.KafkaAddr,
		"group.id":                          "yard-connect",
		"key.converter":                     "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                   "org.apache.kafka.connect.storage.StringConverter",
		"config.storage.topic":              "connect-configs",
		"offset.storage.topic":              "connect-offsets",
		"status.storage.topic":              "connect-status",
		"config.storage.replication.factor": "1",
		"offset.storage.replication.factor": "1",
		"status.storage.replication.factor": "1",
		"offset.storage.partitions":         "5",
		"status.storage.partitions":         "2",
		"exactly.once.source.support":       "enabled",
		"listeners":                         "http://" + rest,
		"rest.advertised.host.name":         "127.0.0.1",
		"offset.flush.interval.ms":          "500",
		"session.timeout.ms":                "6000",
		"heartbeat.interval.ms":             "1000",
		"scheduled.rebalance.max.delay.ms":  "0",
		"task.shutdown.graceful.timeout.ms": "2000",
		"plugin.discovery":                  "only_scan",
		"consumer.fetch.max.wait.ms":        "200",
		"consumer.session.timeout.ms":       "6000",
		"consumer.heartbeat.interval.ms":    "1000",
		"producer.linger.ms":                "5",
		"offset.flush.timeout.ms":           "5000",
		"metadata.max.age.ms":               "5000",
		"producer.transaction.timeout.ms":   "10000",
		"worker.sync.timeout.ms":            "3000",
		"worker.unsync.backoff.ms":          "1000",
		"rebalance.timeout.ms":              "20000",
	}
	var pb strings.Builder
	for k, v := range worker {
		fmt.Fprintf(&pb, "%s=%s\n", k, v)
	}
	if err := os.WriteFile(props, []byte(pb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	startWorker := func() *jvm {
		w := startJVM(t, "connect", "org.apache.kafka.connect.cli.ConnectDistributed", props)
		eventually(t, 2*time.Minute, func() bool {
			var info map[string]any
			return restCall(t, "GET", "http://"+rest+"/", nil, &info) == http.StatusOK
		}, func() string { return "the worker's REST API does not answer" })
		return w
	}
	w := startWorker()

	put := func(name string, cfg map[string]string) {
		t.Helper()
		var res map[string]any
		if code := restCall(t, "PUT", "http://"+rest+"/connectors/"+name+"/config", cfg, &res); code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("PUT connector %s: HTTP %d %v", name, code, res)
		}
	}
	put("file-source", map[string]string{
		"connector.class":      "org.apache.kafka.connect.file.FileStreamSourceConnector",
		"tasks.max":            "1",
		"file":                 in,
		"topic":                topic,
		"exactly.once.support": "required",
		"topic.creation.default.replication.factor": "1",
		"topic.creation.default.partitions":         "1",
	})
	put("file-sink", map[string]string{
		"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
		"tasks.max":       "1",
		"file":            out,
		"topics":          topic,
	})
	waitRunning(t, rest, "file-source", "file-sink")
	waitFileLines(t, out, 100)

	// Lines arrive while the worker dies; more while it is down.
	appendFile(t, in, lines(100, 200))
	w.kill()
	appendFile(t, in, lines(200, 300))
	startWorker()
	waitRunning(t, rest, "file-source", "file-sink")
	waitFileLines(t, out, 300)

	// yard dies while lines arrive; the worker reconnects to the restarted yard.
	appendFile(t, in, lines(300, 400))
	y.Kill()
	y.Restart()
	appendFile(t, in, lines(400, 500))
	waitFileLines(t, out, 500)

	want := strings.Split(strings.TrimSuffix(lines(0, 500), "\n"), "\n")
	// The topic: every line exactly once, in order (the source's offsets and records were
	// written in one transaction).
	cl := client(t, y.KafkaAddr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var got []string
	ctx := ctxTimeout(t, time.Minute)
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("topic %s holds %d lines, want the file's %d exactly once in order; first difference: %s", topic, len(got), len(want), firstDiff(got, want))
	}
	// The sink's file: every line at least once (the sink is at-least-once), in order.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	written := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var dedup []string
	seen := map[string]bool{}
	for _, l := range written {
		if !seen[l] {
			seen[l] = true
			dedup = append(dedup, l)
		}
	}
	if strings.Join(dedup, "\n") != strings.Join(want, "\n") {
		t.Errorf("the sink's file has %d lines, %d distinct; want the source's %d in order: %s", len(written), len(dedup), len(want), firstDiff(dedup, want))
	}
	t.Logf("sink wrote %d lines for %d (duplicates after the kill: %d)", len(written), len(want), len(written)-len(dedup))
	checkCompacted(t, kadm.NewClient(cl), "connect-configs", "connect-offsets", "connect-status")
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) string { return harness.ReservePort(t) }

// restCall sends a JSON request to Connect's REST API and decodes the answer into res; it
// returns the HTTP status, 0 if the worker did not answer.
func restCall(t *testing.T, method, url string, body, res any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if res != nil && len(b) > 0 {
		_ = json.Unmarshal(b, res)
	}
	return resp.StatusCode
}

// waitRunning waits until each connector and all its tasks are RUNNING.
func waitRunning(t *testing.T, rest string, names ...string) {
	t.Helper()
	for _, name := range names {
		var last string
		eventually(t, 2*time.Minute, func() bool {
			var st struct {
				Connector struct{ State, Trace string }
				Tasks     []struct{ State, Trace string }
			}
			if restCall(t, "GET", "http://"+rest+"/connectors/"+name+"/status", nil, &st) != http.StatusOK {
				return false
			}
			last = fmt.Sprintf("%+v", st)
			if st.Connector.State != "RUNNING" || len(st.Tasks) == 0 {
				return false
			}
			for _, task := range st.Tasks {
				if task.State != "RUNNING" {
					return false
				}
			}
			return true
		}, func() string { return name + " is not running: " + last })
	}
}

// waitFileLines waits until the file has at least n distinct lines (the sink may write some
// twice).
func waitFileLines(t *testing.T, path string, n int) {
	t.Helper()
	count := func() int {
		b, _ := os.ReadFile(path)
		distinct := map[string]bool{}
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if strings.HasSuffix(l, "\n") {
				distinct[l] = true
			}
		}
		return len(distinct)
	}
	eventually(t, 2*time.Minute, func() bool { return count() >= n },
		func() string { return fmt.Sprintf("%s has %d distinct lines, want %d", path, count(), n) })
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths %d and %d", len(got), len(want))
	}
	return "none"
}

// checkCompacted checks that topics have cleanup.policy=compact.
func checkCompacted(t *testing.T, adm *kadm.Client, topics ...string) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxTimeout(t, 30*time.Second), topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				policy = c.MaybeValue()
			}
		}
		if rc.Err != nil || policy != "compact" {
			t.Errorf("%s: cleanup.policy=%q (%v), want compact", rc.Name, policy, rc.Err)
		}
	}
}
