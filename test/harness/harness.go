// Package harness runs a real `yard serve` process for tests that need what only a process
// gives: kill -9, restart on the same data dir, clients from other ecosystems.
//
// The binary is built once per test process. Each Yard gets its own data dir and free loopback
// ports, which it keeps across Restart so that clients can reconnect to the same address.
package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds how long Start waits for a freshly started process to accept connections.
const readyTimeout = 60 * time.Second

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/yard once per test process and returns its path. Every test process of
// one checkout builds to the same place (yard-harness-<hash of the module root> in the temp
// directory), replacing the file by a rename, so that a process still running the previous
// build keeps it and nothing accumulates: a directory per process leaked a 30 MB binary for
// every test binary ever run.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildPath, buildErr = build()
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func build() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "yard-harness-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot build yard: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "yard-*.tmp")
	if err != nil {
		return "", fmt.Errorf("cannot build yard: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // gone once renamed; left by a failed build otherwise
	cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/yard")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cannot build yard: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "yard")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("cannot build yard: %w", err)
	}
	return path, nil
}

// ModuleRoot is the repository's root directory (where go.mod is).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("cannot find module root: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("cannot find module root: not inside the yard module")
	}
	return filepath.Dir(mod), nil
}

// Yard is one yard server process.
type Yard struct {
	t         testing.TB
	bin       string
	args      []string
	DataDir   string
	KafkaAddr string
	AMQPAddr  string
	HTTPAddr  string
	// KafkaListeners are the extra Kafka listeners (WithKafkaListener), by security protocol.
	KafkaListeners map[string]string
	logPath        string
	nofile         int    // RLIMIT_NOFILE for the process; 0: inherited
	kafkaSec       string // the Kafka listener's security protocol; "": PLAINTEXT

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
}

// Option adjusts how the process is started.
type Option func(*Yard)

// WithArgs appends extra `yard serve` flags.
func WithArgs(args ...string) Option { return func(y *Yard) { y.args = append(y.args, args...) } }

// WithKafkaListener adds a Kafka listener of the security protocol proto (SSL, SASL_SSL,
// ...) on a free port, besides the PLAINTEXT one; its address is KafkaListeners[proto].
func WithKafkaListener(proto string) Option {
	return func(y *Yard) {
		if y.KafkaListeners == nil {
			y.KafkaListeners = map[string]string{}
		}
		y.KafkaListeners[proto] = ""
	}
}

// WithNofileLimit runs the process under `ulimit -n n` (soft and hard), so that it runs out
// of file descriptors early.
func WithNofileLimit(n int) Option { return func(y *Yard) { y.nofile = n } }

// WithKafkaSecurityProtocol serves the Kafka listener as proto (SASL_PLAINTEXT, ...);
// KafkaAddr stays its HOST:PORT.
func WithKafkaSecurityProtocol(proto string) Option { return func(y *Yard) { y.kafkaSec = proto } }

// WithDataDir serves an existing data directory instead of a new empty one.
func WithDataDir(dir string) Option { return func(y *Yard) { y.DataDir = dir } }

// Start runs `yard serve` on free loopback ports and waits until every listener accepts.
// The process is stopped (SIGTERM) when the test ends; its log is printed if the test failed.
func Start(t testing.TB, opts ...Option) *Yard {
	t.Helper()
	y := &Yard{t: t, bin: Binary(t), DataDir: filepath.Join(t.TempDir(), "data")}
	for _, o := range opts {
		o(y)
	}
	y.logPath = filepath.Join(t.TempDir(), "yard.log")
	t.Cleanup(func() {
		y.Stop()
		if t.Failed() {
			out, _ := os.ReadFile(y.logPath)
			t.Logf("yard log (%s):\n%s", y.logPath, tail(out, 8000))
		}
	})
	// freeAddr releases each port before yard binds it, so a test running beside this one may
	// take it in between: a first start that fails on a taken port is retried on new ports.
	for attempt := 1; ; attempt++ {
		y.KafkaAddr, y.AMQPAddr, y.HTTPAddr = freeAddr(t), freeAddr(t), freeAddr(t)
		for proto := range y.KafkaListeners {
			y.KafkaListeners[proto] = freeAddr(t)
		}
		if attempt == startAttempts || !y.startLostPortRace() {
			break
		}
		t.Logf("yard lost a port to another process at start-up; retrying on new ports")
	}
	y.start()
	return y
}

// startAttempts bounds the retries of a first start that lost a port race.
const startAttempts = 3

// startLostPortRace starts the process; if it exits during start-up because an address was
// taken, it reports true and leaves nothing running. Any other outcome is handled by start's
// waitReady (the process is running and ready, or the test fails).
func (y *Yard) startLostPortRace() bool {
	y.t.Helper()
	before, _ := os.ReadFile(y.logPath)
	y.launch()
	err := y.waitReady(y.done)
	if err == nil {
		return false
	}
	out, _ := os.ReadFile(y.logPath)
	if y.Exited() && strings.Contains(string(out[len(before):]), "address already in use") {
		return true
	}
	y.t.Fatalf("yard did not become ready: %v\n%s", err, tail(out, 4000))
	return false
}

func (y *Yard) start() {
	y.t.Helper()
	if y.Pid() != 0 && !y.Exited() {
		return // already started and ready (Start's first attempt)
	}
	y.launch()
	if err := y.waitReady(y.done); err != nil {
		out, _ := os.ReadFile(y.logPath)
		y.t.Fatalf("yard did not become ready: %v\n%s", err, tail(out, 4000))
	}
}

// launch starts the process with its log appended to y.logPath.
func (y *Yard) launch() {
	y.t.Helper()
	args := y.serveArgs()
	logf, err := os.OpenFile(y.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		y.t.Fatal(err)
	}
	cmd := exec.Command(y.bin, args...)
	if y.nofile > 0 {
		// exec keeps the pid, so signals reach yard itself.
		script := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, y.nofile)
		cmd = exec.Command("/bin/sh", append([]string{"-c", script, y.bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		y.t.Fatalf("cannot start yard: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	y.mu.Lock()
	y.cmd, y.done = cmd, done
	y.mu.Unlock()
}

func (y *Yard) serveArgs() []string {
	kafkaListen := y.KafkaAddr
	if y.kafkaSec != "" {
		kafkaListen = y.kafkaSec + "://" + kafkaListen
	}
	for proto, addr := range y.KafkaListeners {
		kafkaListen += "," + proto + "://" + addr
	}
	return append([]string{"serve",
		"--data-dir", y.DataDir,
		"--kafka-listen", kafkaListen,
		"--amqp-listen", y.AMQPAddr,
		"--http-listen", y.HTTPAddr,
		"--log-level", "debug",
	}, y.args...)
}

// waitReady polls /healthz and the protocol ports; a process that exits early is reported at once.
func (y *Yard) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			return errors.New("process exited during start-up")
		default:
		}
		if resp, err := client.Get("http://" + y.HTTPAddr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && dialable(y.KafkaAddr) && dialable(y.AMQPAddr) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Kill sends SIGKILL and waits for the process to be gone: no flush, no clean shutdown marker.
func (y *Yard) Kill() { y.signal(syscall.SIGKILL) }

// Stop sends SIGTERM and waits; it fails the test if yard did not exit 0.
func (y *Yard) Stop() {
	if code := y.signal(syscall.SIGTERM); code != 0 && code != -1 {
		y.t.Errorf("yard exited %d after SIGTERM", code)
	}
}

// Restart starts the process again on the same data dir and ports (after Kill or Stop).
func (y *Yard) Restart() {
	y.t.Helper()
	y.signal(syscall.SIGKILL) // no-op if already stopped
	y.start()
}

// RunUntilExit runs `yard serve` again on the same data dir and ports (after Kill or Stop),
// for a start that is expected to fail: it waits up to timeout for the process to exit and
// returns its exit code and output. A process still running at the timeout fails the test
// (it is killed first).
func (y *Yard) RunUntilExit(timeout time.Duration) (int, string) {
	y.t.Helper()
	y.signal(syscall.SIGKILL) // no-op if already stopped
	var out bytes.Buffer
	cmd := exec.Command(y.bin, y.serveArgs()...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		y.t.Fatalf("cannot start yard: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		y.t.Fatalf("yard was still running %s after a start expected to fail; killed. Output:\n%s", timeout, tail(out.Bytes(), 4000))
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// Log returns what the process has written to stderr and stdout so far.
func (y *Yard) Log() string {
	out, _ := os.ReadFile(y.logPath)
	return string(out)
}

// signal delivers sig and waits for exit; it returns the exit code, or -1 if not running or
// killed by the signal.
// Hangup sends SIGHUP (reload the TLS material) to the running process; it keeps running.
func (y *Yard) Hangup() {
	y.mu.Lock()
	cmd := y.cmd
	y.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGHUP)
	}
}

func (y *Yard) signal(sig syscall.Signal) int {
	y.mu.Lock()
	cmd, done := y.cmd, y.done
	y.cmd = nil
	y.mu.Unlock()
	if cmd == nil {
		return -1
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		y.t.Errorf("yard did not exit within 60s of %v; killed", sig)
	}
	return cmd.ProcessState.ExitCode()
}

// freeAddr finds a free loopback port. The port is released before yard binds it, so another
// process could take it in between; on loopback in a test that risk is accepted.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// Pid is the running process's id (0 if it is not running).
func (y *Yard) Pid() int {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.cmd == nil || y.cmd.Process == nil {
		return 0
	}
	return y.cmd.Process.Pid
}

// Exited reports whether the process has ended (crashed, or stopped).
func (y *Yard) Exited() bool {
	y.mu.Lock()
	done := y.done
	y.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// RSSBytes is the process's resident set size, read from /proc (Linux only; 0 elsewhere).
func (y *Yard) RSSBytes() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", y.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func (y *Yard) sendOnly(sig syscall.Signal) {
	y.mu.Lock()
	cmd := y.cmd
	y.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}
