package amqp

// Resource alarms: connection.blocked / connection.unblocked, driven by a memory high
// watermark (memory in use by the Go runtime) and a disk free limit (statfs on the data
// directory), checked every ResourceInterval. While an alarm is on, a connection that
// publishes stops being read at its next basic.publish, as RabbitMQ does.

import (
	"runtime/metrics"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/platform"
)

type alarm struct {
	s             *Server
	memWatermark  uint64
	diskFreeLimit uint64

	mu      sync.Mutex // guards the fields below
	conns   map[*conn]struct{}
	reason  string        // "" when no alarm is on
	cleared chan struct{} // closed when the alarm clears
}

func newAlarm(s *Server) *alarm {
	a := &alarm{s: s, conns: map[*conn]struct{}{}, memWatermark: s.cfg.MemoryHighWatermarkBytes, diskFreeLimit: s.cfg.DiskFreeLimitBytes}
	if a.memWatermark == 0 {
		if total, err := platform.TotalMemoryBytes(); err == nil {
			a.memWatermark = uint64(float64(total) * DefaultMemoryFraction)
		}
	}
	if a.diskFreeLimit == 0 {
		a.diskFreeLimit = DefaultDiskFreeLimit
	}
	return a
}

func (a *alarm) run(stop <-chan struct{}) {
	interval := a.s.cfg.ResourceInterval
	if interval <= 0 {
		interval = defaultResourceInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	a.check()
	for {
		select {
		case <-stop:
			a.set("") // release blocked publishers
			return
		case <-t.C:
			a.check()
		}
	}
}

func (a *alarm) check() {
	reason := ""
	if a.memWatermark > 0 && a.memoryUsed() > a.memWatermark {
		reason = "low on memory"
	}
	if free, ok := a.diskFree(); ok && free < a.diskFreeLimit {
		if reason != "" {
			reason = "low on memory and disk"
		} else {
			reason = "low on disk"
		}
	}
	a.set(reason)
}

func (a *alarm) memoryUsed() uint64 {
	if a.s.cfg.MemoryUsed != nil {
		return a.s.cfg.MemoryUsed()
	}
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(samples)
	return samples[0].Value.Uint64() - samples[1].Value.Uint64() - samples[2].Value.Uint64()
}

func (a *alarm) diskFree() (uint64, bool) {
	if a.s.cfg.DiskFree != nil {
		free, err := a.s.cfg.DiskFree()
		return free, err == nil
	}
	if a.s.cfg.DataDir == "" {
		return 0, false
	}
	free, err := platform.DiskFreeBytes(a.s.cfg.DataDir)
	return free, err == nil
}

// set changes the alarm state and tells every connection that asked for connection.blocked.
func (a *alarm) set(reason string) {
	a.mu.Lock()
	if reason == a.reason {
		a.mu.Unlock()
		return
	}
	was := a.reason
	a.reason = reason
	if was == "" {
		a.cleared = make(chan struct{})
	} else if reason == "" {
		close(a.cleared)
	}
	conns := make([]*conn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	if reason != "" {
		a.s.log.Warn("resource alarm: blocking publishers", "reason", reason)
	} else {
		a.s.log.Info("resource alarm cleared: unblocking publishers")
	}
	for _, c := range conns {
		a.notify(c, was, reason)
	}
}

func (a *alarm) notify(c *conn, was, reason string) {
	if !c.capBlocked {
		return
	}
	switch {
	case reason == "":
		c.send(0, &wire.ConnectionUnblocked{})
	case was == "":
		c.send(0, blockedMethod(reason))
	}
}

func (a *alarm) register(c *conn) {
	a.mu.Lock()
	a.conns[c] = struct{}{}
	reason := a.reason
	a.mu.Unlock()
	if reason != "" && c.capBlocked {
		c.send(0, blockedMethod(reason))
	}
}

func (a *alarm) unregister(c *conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
}

// waitUnblocked returns once no alarm is on; if it has to wait, it calls beforeWait first.
func (a *alarm) waitUnblocked(beforeWait func()) {
	a.mu.Lock()
	if a.reason == "" {
		a.mu.Unlock()
		return
	}
	ch := a.cleared
	a.mu.Unlock()
	beforeWait()
	<-ch
}

func blockedMethod(reason string) *wire.ConnectionBlocked {
	return &wire.ConnectionBlocked{Reason: reason}
}

// Alarms reports the resource alarms on now (for the admin plane's metrics).
func (s *Server) Alarms() (memory, disk bool) {
	s.alarm.mu.Lock()
	r := s.alarm.reason
	s.alarm.mu.Unlock()
	return r == "low on memory" || r == "low on memory and disk", r == "low on disk" || r == "low on memory and disk"
}

// Resources are the quantities the resource alarms watch, measured now, with their limits
// and the alarms' state (for the admin plane's /api/nodes).
type Resources struct {
	MemUsed, MemLimit       uint64 // bytes in use by the Go runtime; the high watermark
	DiskFree, DiskFreeLimit uint64 // free bytes on the data directory's file system; the limit
	DiskFreeKnown           bool   // false when the free space cannot be measured here
	MemAlarm, DiskFreeAlarm bool
}

// Resources measures memory and free disk now and reports the alarms' state.
func (s *Server) Resources() Resources {
	mem, disk := s.Alarms()
	r := Resources{MemUsed: s.alarm.memoryUsed(), MemLimit: s.alarm.memWatermark, DiskFreeLimit: s.alarm.diskFreeLimit,
		MemAlarm: mem, DiskFreeAlarm: disk}
	r.DiskFree, r.DiskFreeKnown = s.alarm.diskFree()
	return r
}
