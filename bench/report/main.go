// Command report turns a run of bench/run.sh (bench/out/<time>/results/*.json, one result per
// broker, tool and workload, and machine.txt) into results.md, a markdown table with the
// issue's goals checked, and PNG charts: throughput bars per tool, and the latency
// percentiles (p50, p99, p99.9) over time of each workload, one panel per broker.
//
// A module of its own so that yard's go.mod does not carry gonum/plot and its fonts.
//
//	report bench/out/20261206-151000
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Percentiles and Result mirror bench/internal/load (JSON is the interface).
type Percentiles struct {
	Count uint64  `json:"count"`
	Avg   float64 `json:"avg_ms"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

type Second struct {
	T       int          `json:"t"`
	Records uint64       `json:"records"`
	Ack     *Percentiles `json:"ack"`
	E2E     *Percentiles `json:"e2e"`
}

type Result struct {
	Broker           string       `json:"broker"`
	Protocol         string       `json:"protocol"`
	Tool             string       `json:"tool"`
	Workload         string       `json:"workload"`
	Rate             int          `json:"target_rate"`
	Producers        int          `json:"producers"`
	Consumers        int          `json:"consumers"`
	Seconds          float64      `json:"seconds"`
	Records          uint64       `json:"records"`
	RecordsPerSec    float64      `json:"records_per_sec"`
	ConsumedPerSec   float64      `json:"consumed_per_sec"`
	Ack              *Percentiles `json:"ack_latency"`
	E2E              *Percentiles `json:"e2e_latency"`
	Series           []Second     `json:"series"`
	Errors           uint64       `json:"errors"`
	CPUSecPerMillion float64      `json:"broker_cpu_seconds_per_million"`
	PeakRSSMiB       float64      `json:"broker_peak_rss_mib"`
	Note             string       `json:"note"`
	Started          string       `json:"started"`
}

// brokerOrder is the order of columns and panels; brokers not listed come after.
var brokerOrder = []string{"yard", "yard-journal", "kafka", "kafka-durable", "rabbitmq", "nats", "nats-durable"}

// fsyncs says when each broker makes an acknowledged record durable, as run here.
var fsyncs = map[string]string{
	"yard":          "Kafka protocol: fsync before every acknowledgement, concurrent writers sharing each fsync (group commit; `--sync-policy always`, the default). AMQP: a persistent message on a durable queue is fsynced before its confirm (group commit); transient messages on a non-durable queue stay in memory",
	"yard-journal":  "yard with --kafka-journal (Kafka protocol only): a batch goes to its partition without fsync and to one node-wide journal whose group commit (one fsync for every partition) precedes the acknowledgement; partitions fsynced in the background",
	"kafka":         "Kafka 4.4 as shipped: no fsync before acknowledging; the OS writes dirty pages back (log.flush.interval.messages and .ms unset); fsync at segment roll and shutdown",
	"kafka-durable": "Kafka 4.4 with log.flush.interval.messages=1: flush (fsync) of the partition log after every append, before the acknowledgement",
	"rabbitmq":      "RabbitMQ (Debian) classic queues: a persistent message on a durable queue is fsynced (in batches) before its publisher confirm; transient messages on a non-durable queue stay in memory (paged out under memory pressure)",
	"nats":          "NATS JetStream as shipped: sync_interval 2 min, the ack does not wait for an fsync",
	"nats-durable":  "NATS JetStream with sync_interval: always: fsync after every write, before the ack",
}

func rank(b string) int {
	if i := slices.Index(brokerOrder, b); i >= 0 {
		return i
	}
	return len(brokerOrder)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report RUN_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func load(dir string) ([]*Result, error) {
	files, err := filepath.Glob(filepath.Join(dir, "results", "*.json"))
	if err != nil {
		return nil, err
	}
	var rs []*Result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("cannot read result: %w", err)
		}
		r := &Result{}
		if err := json.Unmarshal(b, r); err != nil {
			return nil, fmt.Errorf("cannot decode %s: %w", f, err)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("cannot report: no results in %s/results", dir)
	}
	// Protocols, tools and workloads in the order they ran (run.sh runs the same ones in the same order against
	// every broker), brokers in brokerOrder.
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Started < rs[j].Started })
	order := map[string]int{}
	for i, r := range rs {
		if _, ok := order[r.Protocol]; !ok {
			order[r.Protocol] = i
		}
		if _, ok := order[r.Protocol+"\x00"+r.Tool]; !ok {
			order[r.Protocol+"\x00"+r.Tool] = i
		}
		if _, ok := order[r.Protocol+"\x00"+r.Tool+"\x00"+r.Workload]; !ok {
			order[r.Protocol+"\x00"+r.Tool+"\x00"+r.Workload] = i
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Protocol != b.Protocol {
			return order[a.Protocol] < order[b.Protocol]
		}
		if a.Tool != b.Tool {
			return order[a.Protocol+"\x00"+a.Tool] < order[b.Protocol+"\x00"+b.Tool]
		}
		if a.Workload != b.Workload {
			return order[a.Protocol+"\x00"+a.Tool+"\x00"+a.Workload] < order[b.Protocol+"\x00"+b.Tool+"\x00"+b.Workload]
		}
		return rank(a.Broker) < rank(b.Broker)
	})
	return rs, nil
}

func run(dir string) error {
	rs, err := load(dir)
	if err != nil {
		return err
	}
	var md strings.Builder
	machine, _ := os.ReadFile(filepath.Join(dir, "machine.txt"))
	fmt.Fprintf(&md, "# Benchmark run %s\n\n", filepath.Base(dir))
	if len(machine) > 0 {
		fmt.Fprintf(&md, "```\n%s```\n\n", machine)
	}
	writeGoals(&md, rs)
	writeTables(&md, rs)
	writeBrokers(&md, rs)
	charts, err := writeCharts(dir, rs)
	if err != nil {
		return err
	}
	if len(charts) > 0 {
		md.WriteString("## Charts\n\n")
		for _, c := range charts {
			fmt.Fprintf(&md, "![%s](%s)\n", c, c)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("cannot write results.md: %w", err)
	}
	fmt.Printf("%s: %d results, %d charts\n", filepath.Join(dir, "results.md"), len(rs), len(charts))
	return nil
}

func ms(p *Percentiles, f func(*Percentiles) float64) string {
	if p == nil {
		return "-"
	}
	v := f(p)
	if v == 0 {
		return "-"
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func num(v float64) string {
	if v == 0 {
		return "-"
	}
	s := fmt.Sprintf("%.0f", v)
	// thousands separators
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func writeTables(md *strings.Builder, rs []*Result) {
	md.WriteString("## Results\n\nRecords (messages) of 1 KiB unless said otherwise; latency in ms: *ack* is produce (publish) to acknowledgement (confirm), *e2e* produce to delivery to a consumer; CPU is the broker process's user+system seconds per million records; a dash where a tool does not measure it. PerfTest has no 99.9th percentile; ProducerPerformance's *ack* is its own send-to-callback latency; EndToEndLatency sends one record at a time.\n\n")
	var last string
	for _, r := range rs {
		key := r.Protocol + " / " + r.Tool
		if key != last {
			fmt.Fprintf(md, "\n### %s\n\n", key)
			md.WriteString("| workload | broker | records/s | consumed/s | ack p50 | ack p99 | ack p99.9 | e2e p50 | e2e p99 | e2e p99.9 | CPU s / M | errors |\n")
			md.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
			last = key
		}
		cpu := "-"
		if r.CPUSecPerMillion > 0 {
			cpu = fmt.Sprintf("%.1f", r.CPUSecPerMillion)
		}
		errs := fmt.Sprint(r.Errors)
		if r.Note != "" && r.Errors > 0 {
			errs += " (" + strings.ReplaceAll(r.Note, "|", "/") + ")"
		}
		fmt.Fprintf(md, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Workload, r.Broker, num(r.RecordsPerSec), num(r.ConsumedPerSec),
			ms(r.Ack, p50), ms(r.Ack, p99), ms(r.Ack, p999), ms(r.E2E, p50), ms(r.E2E, p99), ms(r.E2E, p999), cpu, errs)
	}
	md.WriteString("\n")
}

func p50(p *Percentiles) float64  { return p.P50 }
func p99(p *Percentiles) float64  { return p.P99 }
func p999(p *Percentiles) float64 { return p.P999 }

func writeBrokers(md *strings.Builder, rs []*Result) {
	peak := map[string]float64{}
	cpu := map[string][]float64{}
	var brokers []string
	for _, r := range rs {
		if _, ok := peak[r.Broker]; !ok {
			brokers = append(brokers, r.Broker)
		}
		peak[r.Broker] = max(peak[r.Broker], r.PeakRSSMiB)
		if r.CPUSecPerMillion > 0 {
			cpu[r.Broker] = append(cpu[r.Broker], r.CPUSecPerMillion)
		}
	}
	sort.SliceStable(brokers, func(i, j int) bool { return rank(brokers[i]) < rank(brokers[j]) })
	md.WriteString("## Brokers\n\nPeak RSS of the broker process over all its runs (VmHWM); CPU seconds (user + system) of the broker process per million records, the median and range over its runs (each run's figure is in the tables above).\n\n")
	md.WriteString("| broker | peak RSS (MiB) | CPU s / M records: median (min-max) | when it fsyncs |\n|---|--:|--:|---|\n")
	for _, b := range brokers {
		c := "-"
		if v := cpu[b]; len(v) > 0 {
			slices.Sort(v)
			c = fmt.Sprintf("%.1f (%.1f-%.1f)", v[len(v)/2], v[0], v[len(v)-1])
		}
		fmt.Fprintf(md, "| %s | %.0f | %s | %s |\n", b, peak[b], c, fsyncs[b])
	}
	md.WriteString("\n")
}

func find(rs []*Result, tool, workload, broker string) *Result {
	for _, r := range rs {
		if r.Tool == tool && r.Workload == workload && r.Broker == broker {
			return r
		}
	}
	return nil
}

// writeGoals checks issue 19's goals on the results that measure them.
func writeGoals(md *strings.Builder, rs []*Result) {
	md.WriteString("## Goals\n\n| goal | measured | met |\n|---|---|---|\n")
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	for _, tool := range []string{"franz-go", "ProducerPerformance"} {
		for _, base := range []string{"kafka", "kafka-durable"} {
			y, k := find(rs, tool, "flat acks=all none", "yard"), find(rs, tool, "flat acks=all none", base)
			if y != nil && k != nil && k.RecordsPerSec > 0 {
				x := ratio(y.RecordsPerSec, k.RecordsPerSec)
				fmt.Fprintf(md, "| Kafka path flat out >= 2x %s (%s, acks=all) | %s vs %s records/s: %.2fx | %s |\n",
					base, tool, num(y.RecordsPerSec), num(k.RecordsPerSec), x, yes(x >= 2))
			}
			y, k = find(rs, tool, "50k acks=all none", "yard"), find(rs, tool, "50k acks=all none", base)
			if y != nil && k != nil && y.Ack != nil && k.Ack != nil && k.Ack.P99 > 0 {
				x := ratio(y.Ack.P99, k.Ack.P99)
				fmt.Fprintf(md, "| p99 at 50k records/s <= 1/3 of %s (%s, produce to ack) | %.1f vs %.1f ms: %.2fx | %s |\n",
					base, tool, y.Ack.P99, k.Ack.P99, x, yes(x <= 1.0/3))
			}
		}
	}
	for _, tool := range []string{"amqp091-go", "PerfTest"} {
		for _, n := range []string{"1/1", "4/4"} {
			w := "flat persistent " + n
			y, k := find(rs, tool, w, "yard"), find(rs, tool, w, "rabbitmq")
			if y == nil || k == nil || k.ConsumedPerSec == 0 {
				continue
			}
			x := ratio(y.ConsumedPerSec, k.ConsumedPerSec)
			lower := y.E2E != nil && k.E2E != nil && y.E2E.P99 < k.E2E.P99
			fmt.Fprintf(md, "| AMQP %s >= 5x RabbitMQ with a lower p99 (%s, persistent, consumed/s, e2e p99) | %s vs %s msgs/s: %.2fx; p99 %s vs %s ms | %s |\n",
				n, tool, num(y.ConsumedPerSec), num(k.ConsumedPerSec), x, ms(y.E2E, p99), ms(k.E2E, p99), yes(x >= 5 && lower))
		}
	}
	md.WriteString("\n")
}
