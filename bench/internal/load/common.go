package load

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"time"
)

// Common are the flags every load generator takes.
type Common struct {
	Broker   string
	Workload string
	Out      string
	Pid      int
	Size     int
	Rate     int
	Duration time.Duration
	Warmup   time.Duration
	Drain    time.Duration
}

func (c *Common) Flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Broker, "broker", "yard", "broker name written into the result")
	fs.StringVar(&c.Workload, "workload", "", "workload name written into the result")
	fs.StringVar(&c.Out, "out", "-", "result file (JSON); - for stdout")
	fs.IntVar(&c.Pid, "pid", 0, "broker process id: its CPU time and peak RSS go into the result")
	fs.IntVar(&c.Size, "size", 1024, "record (message) size in bytes, at least 16")
	fs.IntVar(&c.Rate, "rate", 0, "records (messages) per second in all; 0 for flat out")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long to produce, warm-up included")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "first part of the run left out of the figures")
	fs.DurationVar(&c.Drain, "drain", 15*time.Second, "how long to wait for outstanding acks and deliveries after producing")
}

func (c *Common) Check() error {
	if c.Size < 16 {
		return errors.New("cannot run: -size must be at least 16 (a timestamp and a sequence number)")
	}
	if c.Warmup >= c.Duration {
		return errors.New("cannot run: -warmup must be shorter than -duration")
	}
	return nil
}

// Pacer hands out the number of records to send now: all of them flat out, or as many as a
// fixed rate allows since the start (so that a stall is caught up afterwards, as a real
// source of records would).
type Pacer struct {
	Rate  int
	Start time.Time
	sent  int64
}

// next blocks until at least one record may go and returns how many may.
func (p *Pacer) Next(ctx context.Context) int {
	if p.Rate <= 0 {
		return 1 << 30
	}
	for {
		due := int64(time.Since(p.Start).Seconds() * float64(p.Rate))
		if n := due - p.sent; n > 0 {
			n = min(n, 1000)
			p.sent += n
			return int(n)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(time.Duration(float64(time.Second) / float64(p.Rate))):
		}
	}
}

// Stamp writes the send time into a record's first 8 bytes; Stamped reads it back.
func Stamp(b []byte, t time.Time) { binary.BigEndian.PutUint64(b, uint64(t.UnixNano())) }

func Stamped(b []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(b))) }
