// Package ecosystem_test runs real Kafka applications against a real `yard serve` process
// (test/harness): a Kafka Streams 4.4 application with a repartition and a persistent state
// store, at-least-once and exactly_once_v2, across a kill -9 of yard and a restart of the
// application; and Kafka Connect 4.4 in distributed mode with the FileStream connectors of the
// Kafka distribution, across a kill -9 of the worker. Both create their internal topics
// themselves. setup.sh builds them from Maven Central; the tests are skipped without Java.
package ecosystem_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

var tools struct{ cp, skip string }

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env, err := harness.RunSetup(filepath.Join(filepath.Dir(file), "setup.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecosystem interop:", err)
		os.Exit(1)
	}
	tools.cp, tools.skip = env["ECOSYSTEM_CP"], env["SKIP"]
	os.Exit(m.Run())
}

func needJava(t *testing.T) {
	t.Helper()
	if tools.skip != "" {
		t.Skip(tools.skip)
	}
}

// startYard runs yard with a short first-rebalance delay: the applications' groups start
// with one member.
func startYard(t *testing.T) *harness.Yard {
	return harness.Start(t, harness.WithArgs("--kafka-group-initial-rebalance-delay", "100ms"))
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// jvm is a running Java program whose stdout lines are reported on lines; its stderr goes to
// a file printed if the test fails.
type jvm struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}

	mu       sync.Mutex
	uncaught []string // stdout lines starting with UNCAUGHT
}

// javaFlags keep a JVM small and quick to start on a busy machine.
var javaFlags = []string{"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS", "-Xms32m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"}

func startJVM(t *testing.T, name, class string, args ...string) *jvm {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("java", append(append(append([]string{}, javaFlags...), "-cp", tools.cp, class), args...)...)
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	j := &jvm{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "UNCAUGHT") {
				j.mu.Lock()
				j.uncaught = append(j.uncaught, line)
				j.mu.Unlock()
			}
			select {
			case j.lines <- line:
			default: // nobody waits for it
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(j.done)
	}()
	t.Cleanup(func() {
		j.kill()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 40000 {
				out = out[len(out)-40000:]
			}
			t.Logf("%s stderr (%s):\n%s", name, logPath, out)
		}
	})
	return j
}

// kill ends the process with SIGKILL and waits for it.
func (j *jvm) kill() {
	_ = j.cmd.Process.Kill()
	<-j.done
}

// send writes one command line to the program's stdin.
func (j *jvm) send(cmd string) {
	j.t.Helper()
	if _, err := io.WriteString(j.stdin, cmd+"\n"); err != nil {
		j.t.Fatalf("%s: cannot send %q: %v", j.name, cmd, err)
	}
}

// waitLine waits for a stdout line equal to want, failing the test after timeout or if the
// program exits first.
func (j *jvm) waitLine(want string, timeout time.Duration) {
	j.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-j.lines:
			j.t.Logf("%s %s: %s", time.Now().Format("15:04:05.000"), j.name, line)
			if line == want {
				return
			}
		case <-j.done:
			j.t.Fatalf("%s exited (%v) before printing %q", j.name, j.cmd.ProcessState, want)
		case <-deadline:
			j.t.Fatalf("%s did not print %q within %s", j.name, want, timeout)
		}
	}
}

// wait waits for the program to exit by itself.
func (j *jvm) wait(timeout time.Duration) {
	j.t.Helper()
	select {
	case <-j.done:
		if !j.cmd.ProcessState.Success() {
			j.t.Errorf("%s exited: %v", j.name, j.cmd.ProcessState)
		}
	case <-time.After(timeout):
		j.t.Fatalf("%s did not exit within %s", j.name, timeout)
	}
}

// checkNoUncaught fails the test if the program reported an exception that killed a thread.
func (j *jvm) checkNoUncaught() {
	j.t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, u := range j.uncaught {
		j.t.Errorf("%s: %s", j.name, u)
	}
}

// eventually polls cond every 100ms until it is true, failing the test after timeout with
// what describe says.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %s", timeout, describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
