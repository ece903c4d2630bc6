package admin

// /api/nodes and /api/nodes/{name}: this broker as RabbitMQ's one node, with the figures
// monitoring tools check (check_rabbitmq_server, _watermark, _partition): memory against the
// high watermark, free disk against its limit, file descriptors and sockets against the
// open-file limit, and goroutines in place of Erlang processes. Every figure is measured when
// asked.

import (
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/platform"
)

// procTotal is what proc_total reports: Go has no limit on goroutines, so it is Erlang's
// default process limit, the figure RabbitMQ reports, against which check_rabbitmq_server's
// percentages keep their usual meaning.
const procTotal = 1 << 20

// Node is one node as /api/nodes shows it (RabbitMQ's field names).
type Node struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Running       bool     `json:"running"`
	OSPid         string   `json:"os_pid"`
	Uptime        int64    `json:"uptime"` // milliseconds
	Processors    int      `json:"processors"`
	MemUsed       uint64   `json:"mem_used"`
	MemLimit      uint64   `json:"mem_limit"`
	MemAlarm      bool     `json:"mem_alarm"`
	DiskFree      uint64   `json:"disk_free"`
	DiskFreeLimit uint64   `json:"disk_free_limit"`
	DiskFreeAlarm bool     `json:"disk_free_alarm"`
	FDUsed        int      `json:"fd_used"`
	FDTotal       uint64   `json:"fd_total"`
	SocketsUsed   int      `json:"sockets_used"`
	SocketsTotal  uint64   `json:"sockets_total"`
	ProcUsed      int      `json:"proc_used"`
	ProcTotal     int      `json:"proc_total"`
	RunQueue      int      `json:"run_queue"`
	Partitions    []string `json:"partitions"`
}

// nodeJSON measures this node now.
func (s *Server) nodeJSON() Node {
	n := Node{Name: s.cfg.Node, Type: "disc", Running: true, OSPid: formatInt(int64(os.Getpid())),
		Uptime: time.Since(s.started).Milliseconds(), Processors: runtime.GOMAXPROCS(0),
		ProcUsed: runtime.NumGoroutine(), ProcTotal: procTotal, Partitions: []string{}}
	if s.cfg.Resources != nil {
		r := s.cfg.Resources()
		n.MemUsed, n.MemLimit, n.MemAlarm = r.MemUsed, r.MemLimit, r.MemAlarm
		n.DiskFree, n.DiskFreeLimit, n.DiskFreeAlarm = r.DiskFree, r.DiskFreeLimit, r.DiskFreeAlarm
	} else {
		n.MemUsed = goMemoryUsed()
		if total, err := platform.TotalMemoryBytes(); err == nil {
			n.MemLimit = uint64(float64(total) * amqp.DefaultMemoryFraction)
		}
	}
	n.FDUsed, n.SocketsUsed = openFiles()
	if limit, err := platform.OpenFileLimit(); err == nil {
		// A socket is a file descriptor: both share the one limit.
		n.FDTotal, n.SocketsTotal = limit, limit
	}
	return n
}

// goMemoryUsed is the memory the Go runtime holds for the heap and everything else, less
// what it has released or keeps free (the measure the memory alarm uses).
func goMemoryUsed() uint64 {
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}
	metrics.Read(samples)
	return samples[0].Value.Uint64() - samples[1].Value.Uint64() - samples[2].Value.Uint64()
}

// openFiles counts the process's open file descriptors and, among them, sockets (listeners
// and connections) from /proc/self/fd; 0, 0 where there is no such directory.
func openFiles() (fds, sockets int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		fds++
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return fds, sockets
}

func (s *Server) listNodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []Node{s.nodeJSON()})
}

// getNode answers /api/nodes/{name} for this node's name, and for the names tools derive
// from a host name (check_rabbitmq_server asks for rabbit@<first label of -H or -n>):
// rabbit@ followed by this node's host part, this machine's short host name, or localhost.
func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	if !s.isThisNode(pathValue(r, "name")) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.nodeJSON())
}

func (s *Server) isThisNode(name string) bool {
	if name == s.cfg.Node {
		return true
	}
	host, ok := strings.CutPrefix(name, "rabbit@")
	if !ok {
		return false
	}
	if _, own, ok := strings.Cut(s.cfg.Node, "@"); ok && host == own {
		return true
	}
	if host == "localhost" {
		return true
	}
	h, err := os.Hostname()
	if err != nil {
		return false
	}
	short, _, _ := strings.Cut(h, ".")
	return host == short
}
