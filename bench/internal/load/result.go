package load

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Result is one workload run against one broker by one tool: what bench/run.sh collects
// under bench/out/<time>/results/ and the report (bench/report) turns into the table and
// charts. Every tool's output, the drivers' own and the Java tools' parsed, takes this shape.
type Result struct {
	Broker    string `json:"broker"`   // yard, kafka, kafka-durable, rabbitmq, nats, nats-durable
	Protocol  string `json:"protocol"` // kafka, amqp, nats
	Tool      string `json:"tool"`     // franz-go, ProducerPerformance, ConsumerPerformance, EndToEndLatency, amqp091-go, PerfTest, nats.go
	Workload  string `json:"workload"` // a short name, the same for every broker
	Rate      int    `json:"target_rate"`
	Acks      string `json:"acks,omitempty"`
	Codec     string `json:"compression,omitempty"`
	Persist   bool   `json:"persistent,omitempty"`
	Producers int    `json:"producers,omitempty"`
	Consumers int    `json:"consumers,omitempty"`
	Size      int    `json:"record_bytes"`

	Seconds        float64      `json:"seconds"` // measured window, after the warm-up
	Records        uint64       `json:"records"` // the drivers: acknowledged in the window; the Java tools: every record sent (read)
	RecordsPerSec  float64      `json:"records_per_sec"`
	ConsumedPerSec float64      `json:"consumed_per_sec,omitempty"`
	Ack            *Percentiles `json:"ack_latency,omitempty"` // produce (publish) to acknowledgement (confirm)
	E2E            *Percentiles `json:"e2e_latency,omitempty"` // produce (publish) to delivery
	Series         []Second     `json:"series,omitempty"`
	Errors         uint64       `json:"errors"`

	BrokerCPUSeconds float64 `json:"broker_cpu_seconds,omitempty"`
	CPUSecPerMillion float64 `json:"broker_cpu_seconds_per_million,omitempty"`
	BrokerPeakRSSMiB float64 `json:"broker_peak_rss_mib,omitempty"`
	Note             string  `json:"note,omitempty"`
	Started          string  `json:"started"`
}

func (r *Result) Write(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return fmt.Errorf("cannot encode result: %w", err)
	}
	if path == "" || path == "-" {
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write result: %w", err)
	}
	return nil
}

// ProcSample is a broker process's CPU time and peak resident set, from /proc.
type ProcSample struct {
	CPU     float64 // user + system seconds
	PeakMiB float64 // VmHWM
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func SampleProc(pid int) (ProcSample, error) {
	var s ProcSample
	if pid <= 0 {
		return s, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("cannot read the broker's /proc stat: %w", err)
	}
	// The command name (2nd field) may hold spaces: fields are counted after its ')'.
	st := string(b)
	f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
	if len(f) < 13 {
		return s, fmt.Errorf("cannot parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // utime is field 14, f[0] is field 3
	stt, _ := strconv.ParseFloat(f[12], 64)
	s.CPU = (ut + stt) / clockTicks
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("cannot read the broker's /proc status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			s.PeakMiB = kb / 1024
		}
	}
	return s, nil
}

// BrokerCost fills the CPU and memory fields of r from two samples around its run.
func (r *Result) BrokerCost(before, after ProcSample, messages uint64) {
	if after.CPU == 0 && after.PeakMiB == 0 {
		return
	}
	r.BrokerCPUSeconds = after.CPU - before.CPU
	if messages > 0 {
		r.CPUSecPerMillion = r.BrokerCPUSeconds / float64(messages) * 1e6
	}
	r.BrokerPeakRSSMiB = after.PeakMiB
}

func Now() string { return time.Now().UTC().Format(time.RFC3339) }

// Summarize fills r's throughput and latency fields from a run's series over its measured
// window (the duration after the warm-up): acknowledgements, and end-to-end latencies when e2e
// is not nil (a run with a consumer).
func (r *Result) Summarize(window time.Duration, ack, e2e *Series) {
	secs := window.Seconds()
	r.Seconds = secs
	r.Ack = ack.Total()
	if r.Ack != nil {
		r.Records = r.Ack.Count
	}
	r.RecordsPerSec = float64(r.Records) / secs
	if e2e != nil {
		r.E2E = e2e.Total()
		if r.E2E != nil {
			r.ConsumedPerSec = float64(r.E2E.Count) / secs
		}
	}
	r.Series = FillSeries(ack, e2e)
}
