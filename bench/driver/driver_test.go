package main

import (
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/bench/internal/load"
	"github.com/yardmq/yard/test/harness"
)

// The smoke test of bench/run.sh's harness (the full runs are not in CI): the parsers of the
// incumbents' tools on their recorded output, both drivers against a real yard for a second
// or two, and the report (its own module, bench/report) on what they wrote.

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestParseProducerPerformance(t *testing.T) {
	var r load.Result
	if err := parseProducerPerformance(readTestdata(t, "producerperformance.txt"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Records != 250000 || !near(r.RecordsPerSec, 13653.741125) || r.Ack == nil ||
		r.Ack.P50 != 1382 || r.Ack.P99 != 3512 || r.Ack.P999 != 3598 || r.Ack.Max != 3639 {
		t.Fatalf("summary parsed as %+v, ack %+v", r, r.Ack)
	}
	if len(r.Series) != 16 || r.Series[9].Ack == nil || r.Series[9].Ack.Avg != 3438 || r.Series[9].Records != 10875 {
		t.Fatalf("series %+v", r.Series)
	}

	// Stopped before its summary: the interval lines after the first give the rate.
	var s load.Result
	if err := parseProducerPerformance(readTestdata(t, "producerperformance-stopped.txt"), &s); err != nil {
		t.Fatal(err)
	}
	if s.RecordsPerSec < 1000 || s.Ack == nil || s.Ack.Max == 0 || s.Note == "" {
		t.Fatalf("stopped run parsed as %+v", s)
	}

	// With --warmup-records: the steady-state summary after the whole run's gives the figures.
	var w load.Result
	if err := parseProducerPerformance(readTestdata(t, "producerperformance-warmup.txt"), &w); err != nil {
		t.Fatal(err)
	}
	if w.Records != 20000 || !near(w.RecordsPerSec, 3083.564601) || w.Ack == nil || w.Ack.P50 != 4044 ||
		w.Ack.P99 != 4908 || w.Note == "" || len(w.Series) != 4 {
		t.Fatalf("warm-up run parsed as %+v, ack %+v", w, w.Ack)
	}
}

func TestParseConsumerPerformance(t *testing.T) {
	var r load.Result
	out := readTestdata(t, "consumerperformance.txt")
	out = strings.Replace(out, "0.0000, 0.0000, 0, 0.0000, 0, 5009, 0.0000, 0.0000", "97.6563, 9.5000, 100000, 9500.0000, 300, 5009, 10.0000, 19964.0000", 1)
	if err := parseConsumerPerformance(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Records != 100000 || r.ConsumedPerSec != 19964 {
		t.Fatalf("parsed as %+v", r)
	}
}

func TestParseEndToEndLatency(t *testing.T) {
	var r load.Result
	if err := parseEndToEndLatency(readTestdata(t, "endtoendlatency.txt"), &r); err != nil {
		t.Fatal(err)
	}
	if r.E2E == nil || r.E2E.Avg != 9.6082 || r.E2E.P50 != 4 || r.E2E.P99 != 85 || r.E2E.P999 != 500 {
		t.Fatalf("parsed as %+v", r.E2E)
	}
}

func TestParsePerfTest(t *testing.T) {
	var r load.Result
	if err := parsePerfTest(readTestdata(t, "perftest.txt"), 2*time.Second, &r); err != nil {
		t.Fatal(err)
	}
	// After 2 s: the lines at 2.013, 3.001 and 4.039 s.
	if !near(r.ConsumedPerSec, (2761+7001+3477)/3.0) || !near(r.RecordsPerSec, (3067+6724+3636)/3.0) {
		t.Fatalf("rates %v %v", r.ConsumedPerSec, r.RecordsPerSec)
	}
	if r.E2E == nil || !near(r.E2E.P50, 186.333) || !near(r.E2E.P99, 541.102) || r.Ack == nil || !near(r.Ack.P99, 271.786) {
		t.Fatalf("latency %+v %+v", r.E2E, r.Ack)
	}
	if len(r.Series) != 4 || r.Series[3].E2E == nil || !near(r.Series[3].E2E.P99, 304.461) {
		t.Fatalf("series %+v", r.Series)
	}
}

func readResult(t *testing.T, path string) load.Result {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r load.Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDriversAgainstYard runs both drivers briefly against a real yard and, unless -short,
// the report on their results.
func TestDriversAgainstYard(t *testing.T) {
	y := harness.Start(t, harness.WithArgs("--log-level", "warn"))
	dir := t.TempDir()
	results := filepath.Join(dir, "results")
	if err := os.Mkdir(results, 0o755); err != nil {
		t.Fatal(err)
	}
	pid := y.Pid()
	common := []string{"-broker", "yard", "-pid", itoa(pid), "-duration", "2s", "-warmup", "500ms", "-drain", "10s", "-size", "256"}

	kout := filepath.Join(results, "kafka.json")
	if err := runKafka(append(common, "-brokers", y.KafkaAddr, "-workload", "2k acks=all none", "-rate", "2000",
		"-compression", "lz4", "-out", kout)); err != nil {
		t.Fatal(err)
	}
	k := readResult(t, kout)
	// The end-to-end total covers the measured window only; on a loaded machine (the whole
	// suite at once) the consumer can start fetching after it, during the drain, which the
	// per-second series still records.
	consumedE2E := k.E2E != nil && k.E2E.Count > 0
	for _, s := range k.Series {
		consumedE2E = consumedE2E || (s.E2E != nil && s.E2E.Count > 0)
	}
	if k.Records == 0 || k.Errors != 0 || k.Ack == nil || !consumedE2E || len(k.Series) < 2 {
		t.Fatalf("kafka result %+v", k)
	}
	if k.BrokerPeakRSSMiB == 0 || k.BrokerCPUSeconds < 0 {
		t.Fatalf("no broker figures from /proc: %+v", k)
	}

	aout := filepath.Join(results, "amqp.json")
	if err := runAMQP(append(common, "-url", "amqp://guest:guest@"+y.AMQPAddr+"/", "-workload", "2k persistent 2/2",
		"-rate", "2000", "-producers", "2", "-consumers", "2", "-out", aout)); err != nil {
		t.Fatal(err)
	}
	a := readResult(t, aout)
	if a.Records == 0 || a.Errors != 0 || a.Ack == nil || a.E2E == nil || a.E2E.Count == 0 {
		t.Fatalf("amqp result %+v", a)
	}

	if testing.Short() {
		return
	}
	// The report is a module of its own (gonum/plot): build it as run.sh does and run it.
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the report")
	}
	report := filepath.Join(dir, "report")
	build := exec.Command("go", "build", "-o", report, ".")
	build.Dir = filepath.Join(harness.ModuleRoot(t), "bench", "report")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build the report: %v\n%s", err, out)
	}
	if out, err := exec.Command(report, dir).CombinedOutput(); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"### kafka / franz-go", "| 2k acks=all none | yard |", "### amqp / amqp091-go", "## Brokers"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) < 4 { // two throughput charts, two latency charts
		t.Errorf("charts: %v", pngs)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestDriverAgainstSink runs the franz-go driver briefly against the sink (sink.go): every
// record is acknowledged, and the sink counts what it was sent.
func TestDriverAgainstSink(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(ln, 6)
	done := make(chan error, 1)
	go func() { done <- s.serve() }()
	out := filepath.Join(t.TempDir(), "sink.json")
	if err := runKafka([]string{"-broker", "sink", "-brokers", ln.Addr().String(), "-consume=false", "-duration", "1500ms",
		"-warmup", "500ms", "-drain", "10s", "-size", "256", "-rate", "2000", "-out", out}); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r := readResult(t, out)
	if r.Records == 0 || r.Errors != 0 || r.Ack == nil {
		t.Fatalf("result %+v", r)
	}
	if got := s.records.Load(); got < int64(r.Records) || s.requests.Load() == 0 {
		t.Fatalf("the sink counted %d records in %d requests; the driver %d", got, s.requests.Load(), r.Records)
	}
}
