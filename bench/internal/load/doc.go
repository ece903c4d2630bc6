// Package load holds what the comparison benchmarks' load generators (bench/driver and the
// NATS driver in bench/nats) share: the flags every run takes, the pacer of fixed-rate runs,
// a log-linear latency histogram with per-second series, and the JSON result every run ends
// as, with the broker process's CPU seconds and peak RSS from /proc.
package load
