// Command driver is the load generator of yard's comparison benchmarks (bench/run.sh): it
// drives a Kafka-protocol broker with franz-go and an AMQP 0-9-1 broker with amqp091-go, and
// wraps the incumbents' own tools (Kafka's ProducerPerformance, ConsumerPerformance and
// EndToEndLatency, RabbitMQ's PerfTest), so that every run ends as one JSON result (result.go):
// records/s, produce-to-ack and end-to-end latency percentiles (p50, p99, p99.9), a
// per-second series, and the broker process's CPU seconds and peak RSS from /proc.
//
//	driver kafka -brokers 127.0.0.1:9092 -rate 50000 -acks all -compression lz4 -duration 20s -out r.json
//	driver amqp -url amqp://guest:guest@127.0.0.1:5672/ -producers 4 -consumers 4 -persistent
//	driver wrap -tool ProducerPerformance -pid PID -out r.json -- java -cp ... org.apache.kafka.tools.ProducerPerformance ...
//	driver topic -brokers 127.0.0.1:9092 -create NAME -partitions 6    (or -delete NAME)
//	driver proc PID      (the process's CPU seconds and peak RSS)
//	driver sink -listen 127.0.0.1:9092   (answers produce requests without storing: the driver's ceiling, sink.go)
//
// Latency is measured from the moment the driver hands a record to the client library, as
// Kafka's ProducerPerformance does; at a fixed rate a stalled broker makes the driver fall
// behind and catch up afterwards, which shows in the per-second records.
package main

import (
	"github.com/yardmq/yard/bench/internal/load"

	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: driver kafka|amqp|topic|wrap|sink|proc [flags] (see the package doc)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "kafka":
		err = runKafka(os.Args[2:])
	case "amqp":
		err = runAMQP(os.Args[2:])
	case "topic":
		err = runTopic(os.Args[2:])
	case "wrap":
		err = runWrap(os.Args[2:])
	case "sink":
		err = runSink(os.Args[2:])
	case "proc":
		var pid int
		if len(os.Args) > 2 {
			pid, _ = strconv.Atoi(os.Args[2])
		}
		var s load.ProcSample
		if s, err = load.SampleProc(pid); err == nil {
			fmt.Printf("cpu_seconds %.2f peak_rss_mib %.1f\n", s.CPU, s.PeakMiB)
		}
	default:
		err = fmt.Errorf("cannot run: unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
}
