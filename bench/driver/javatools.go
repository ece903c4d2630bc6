package main

import (
	"github.com/yardmq/yard/bench/internal/load"

	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runWrap runs another tool (Kafka's ProducerPerformance, ConsumerPerformance,
// EndToEndLatency; RabbitMQ's PerfTest), copies its output to -log, parses it into a load.Result
// and measures the broker process (-pid) around it.
func runWrap(args []string) error {
	var c load.Common
	fs := flag.NewFlagSet("wrap", flag.ExitOnError)
	c.Flags(fs)
	tool := fs.String("tool", "", "ProducerPerformance, ConsumerPerformance, EndToEndLatency or PerfTest")
	protocol := fs.String("protocol", "kafka", "kafka or amqp")
	logPath := fs.String("log", "", "file to copy the tool's output to")
	timeout := fs.Duration("timeout", 0, "stop the tool (SIGTERM) after this long and parse what it printed; 0 for no limit")
	acks := fs.String("acks", "", "written into the result")
	codec := fs.String("compression", "", "written into the result")
	persistent := fs.Bool("persistent", false, "written into the result")
	producers := fs.Int("producers", 0, "written into the result")
	consumers := fs.Int("consumers", 0, "written into the result")
	_ = fs.Parse(args)
	cmdArgs := fs.Args()
	if len(cmdArgs) == 0 {
		return fmt.Errorf("cannot wrap: no command after the flags")
	}
	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return fmt.Errorf("cannot create log: %w", err)
		}
		defer f.Close()
		w = io.MultiWriter(&buf, f)
	}
	cmd := exec.CommandContext(ctx, cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	before, _ := load.SampleProc(c.Pid)
	started := time.Now()
	runErr := cmd.Run()
	after, _ := load.SampleProc(c.Pid)
	res := &load.Result{Broker: c.Broker, Protocol: *protocol, Tool: *tool, Workload: c.Workload, Rate: c.Rate,
		Acks: *acks, Codec: *codec, Persist: *persistent, Producers: *producers, Consumers: *consumers,
		Size: c.Size, Started: started.UTC().Format(time.RFC3339)}
	var err error
	switch *tool {
	case "ProducerPerformance":
		err = parseProducerPerformance(buf.String(), res)
	case "ConsumerPerformance":
		err = parseConsumerPerformance(buf.String(), res)
	case "EndToEndLatency":
		err = parseEndToEndLatency(buf.String(), res)
	case "PerfTest":
		err = parsePerfTest(buf.String(), c.Warmup, res)
	default:
		return fmt.Errorf("cannot wrap: unknown tool %q", *tool)
	}
	if err != nil {
		if runErr != nil {
			err = fmt.Errorf("%w (the tool: %v)", err, runErr)
		}
		res.Note = err.Error()
		res.Errors++
	} else if runErr != nil && ctx.Err() == nil {
		res.Note = "the tool exited: " + runErr.Error()
	}
	// CPU is measured over the whole run: divided by every record the tool sent (or read).
	total := res.Records
	res.BrokerCost(before, after, total)
	return res.Write(c.Out)
}

var (
	ppLine  = regexp.MustCompile(`^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency\.?$`)
	ppFinal = regexp.MustCompile(`^(\d+) (?:steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.?$`)
)

func atof(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// parseProducerPerformance reads ProducerPerformance's per-interval lines (run it with
// --reporting-interval 1000 for a per-second series) and its final summary. Stopped early,
// it has no summary: the rate and the latency (average, max) come from the interval lines.
// Run with --warmup-records, it prints a second summary of the records after the warm-up (the
// "steady state"), which then gives the figures: the first seconds of a JVM run interpreted
// code, and at a fixed rate the backlog they build up would otherwise set the tail.
func parseProducerPerformance(out string, res *load.Result) error {
	var sum, n float64
	var maxMs float64
	var t int
	final := false
	for _, line := range lines(out) {
		if m := ppFinal.FindStringSubmatch(line); m != nil {
			res.Records = uint64(atof(m[1]))
			res.RecordsPerSec = atof(m[2])
			res.Seconds = float64(res.Records) / max(res.RecordsPerSec, 1)
			res.Ack = &load.Percentiles{Count: res.Records, Avg: atof(m[4]), Max: atof(m[5]),
				P50: atof(m[6]), P99: atof(m[8]), P999: atof(m[9])}
			if strings.Contains(line, "steady state") {
				res.Note = "steady state: the records after --warmup-records"
				return nil
			}
			final = true // a steady-state summary may follow
			continue
		}
		if final {
			continue
		}
		if m := ppLine.FindStringSubmatch(line); m != nil {
			t++
			recs := atof(m[1])
			res.Series = append(res.Series, load.Second{T: t, Records: uint64(recs),
				Ack: &load.Percentiles{Count: uint64(recs), Avg: atof(m[4]), Max: atof(m[5])}})
			res.Records += uint64(recs)
			if t > 1 { // the first interval is the JVM's warm-up
				sum += atof(m[2])
				n++
				maxMs = max(maxMs, atof(m[5]))
			}
		}
	}
	if final {
		return nil
	}
	if n == 0 {
		return fmt.Errorf("cannot parse ProducerPerformance's output: no summary and too few interval lines")
	}
	res.RecordsPerSec = sum / n
	res.Seconds = n
	res.Ack = &load.Percentiles{Count: res.Records, Max: maxMs}
	res.Note = "stopped before its summary: rate from its interval lines, no percentiles"
	return nil
}

// parseConsumerPerformance reads ConsumerPerformance's CSV-like summary: a header line naming
// the columns and a line of values. The rate is the fetch rate, without the group join.
func parseConsumerPerformance(out string, res *load.Result) error {
	ls := lines(out)
	for i, line := range ls {
		if !strings.HasPrefix(line, "start.time") {
			continue
		}
		names := strings.Split(line, ",")
		// A warning (a timeout) may come between the header and the values.
		var vals []string
		for _, l := range ls[i+1:] {
			if v := strings.Split(l, ","); len(v) == len(names) {
				vals = v
				break
			}
		}
		if vals == nil {
			continue
		}
		col := map[string]string{}
		for j, name := range names {
			col[strings.TrimSpace(name)] = strings.TrimSpace(vals[j])
		}
		res.Records = uint64(atof(col["data.consumed.in.nMsg"]))
		// The rate of fetching, without the group join (rebalance.time.ms), which takes a
		// few seconds and says nothing of a broker's throughput.
		res.ConsumedPerSec = atof(col["fetch.nMsg.sec"])
		if res.ConsumedPerSec == 0 {
			res.ConsumedPerSec = atof(col["nMsg.sec"])
		}
		res.Note = fmt.Sprintf("%s records/s including the group join of %s ms", col["nMsg.sec"], col["rebalance.time.ms"])
		res.RecordsPerSec = res.ConsumedPerSec
		if res.ConsumedPerSec > 0 {
			res.Seconds = float64(res.Records) / res.ConsumedPerSec
		}
		return nil
	}
	return fmt.Errorf("cannot parse ConsumerPerformance's output: no summary")
}

var (
	e2eAvg = regexp.MustCompile(`Avg latency: ([\d.]+) ms`)
	e2ePct = regexp.MustCompile(`Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99\.9th = ([\d.]+)`)
)

// parseEndToEndLatency reads EndToEndLatency's summary (one record at a time: produce, wait
// for the ack, consume it).
func parseEndToEndLatency(out string, res *load.Result) error {
	a := e2eAvg.FindStringSubmatch(out)
	p := e2ePct.FindStringSubmatch(out)
	if a == nil || p == nil {
		return fmt.Errorf("cannot parse EndToEndLatency's output: no summary")
	}
	res.E2E = &load.Percentiles{Avg: atof(a[1]), P50: atof(p[1]), P99: atof(p[2]), P999: atof(p[3])}
	return nil
}

var (
	ptSecond  = regexp.MustCompile(`time:? ([\d.]+) ?s, sent: ([\d.]+) msg/s.*received: ([\d.]+) msg/s`)
	ptLatency = regexp.MustCompile(`(consumer|confirm) latency:? ?(?:min/median/75th/95th/99th)? ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) (µs|ms)`)
	ptRate    = regexp.MustCompile(`(sending|receiving) rate avg: ([\d.]+) msg/s`)
)

// parsePerfTest reads PerfTest's per-second lines and summary. Its JVM needs its first
// seconds to compile its hot paths and until then cannot drive a broker past ~20k msgs/s, so
// the rate is the mean of the per-second receiving rates after -warmup (whole-run averages go
// into the note); Records counts the whole run. Its latency summary has min/median/75th/95th/99th: no 99.9th.
func parsePerfTest(out string, warmup time.Duration, res *load.Result) error {
	var sum float64
	var n int
	var sent, all float64
	for _, line := range lines(out) {
		if m := ptSecond.FindStringSubmatch(line); m != nil {
			t := atof(m[1])
			s := load.Second{T: int(t + 0.5), Records: uint64(atof(m[3]))}
			for _, l := range ptLatency.FindAllStringSubmatch(line, -1) {
				p := ptPercentiles(l)
				if l[1] == "confirm" {
					s.Ack = p
				} else {
					s.E2E = p
				}
			}
			res.Series = append(res.Series, s)
			all += atof(m[2])
			if t > warmup.Seconds() {
				sum += atof(m[3])
				sent += atof(m[2])
				n++
			}
			continue
		}
		if strings.Contains(line, "latency") && !strings.Contains(line, "time") {
			for _, l := range ptLatency.FindAllStringSubmatch(line, -1) {
				if l[1] == "confirm" {
					res.Ack = ptPercentiles(l)
				} else {
					res.E2E = ptPercentiles(l)
				}
			}
		}
		if m := ptRate.FindStringSubmatch(line); m != nil {
			res.Note = strings.TrimSpace(res.Note + fmt.Sprintf(" whole-run %s rate %s msg/s;", m[1], m[2]))
		}
	}
	if n == 0 {
		return fmt.Errorf("cannot parse PerfTest's output: no per-second line after the warm-up")
	}
	res.Seconds = float64(n)
	res.RecordsPerSec = sent / float64(n)
	res.ConsumedPerSec = sum / float64(n)
	res.Records = uint64(all) // sent in the whole run, as the broker's CPU time is measured
	return nil
}

func ptPercentiles(m []string) *load.Percentiles {
	scale := 1.0 / 1000 // µs to ms
	if m[7] == "ms" {
		scale = 1
	}
	return &load.Percentiles{P50: atof(m[3]) * scale, P99: atof(m[6]) * scale}
}

func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, strings.TrimSpace(sc.Text()))
	}
	return out
}
