// Package amqp_test drives a real `yard serve` process (test/harness) with AMQP 0-9-1 clients
// from other ecosystems, installed from the package registries by setup.sh: the RabbitMQ Java
// client (java/, the seed's dispatch code), pika (python/), amqplib (node/) and amqp-tools
// (amqp-publish, amqp-consume).
package amqp_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// tools are the clients setup.sh installed.
var tools map[string]string

var here string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	here = filepath.Dir(file)
	var err error
	if tools, err = harness.RunSetup(filepath.Join(here, "setup.sh")); err != nil {
		fmt.Fprintln(os.Stderr, "AMQP interop:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func hostPort(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}

// runChecks runs a features script and requires every "OK" line it promises and no "FAIL".
func runChecks(t *testing.T, want []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+tools["NODE_PATH"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", name, err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), "OK "+w+"\n") {
			t.Fatalf("%s: check %q missing\n%s", name, w, out)
		}
	}
}

func TestPikaFeatures(t *testing.T) {
	y := harness.Start(t)
	h, p := hostPort(y.AMQPAddr)
	runChecks(t, []string{"server-product", "server-named", "topic-route", "requeue-redelivered", "get-empty", "mandatory-return", "tx", "passive-404"},
		tools["PYTHON"], filepath.Join(here, "python", "features.py"), h, p)
}

// TestPikaConnection: the connection-level behaviours pika's own tests expect of RabbitMQ.
func TestPikaConnection(t *testing.T) {
	y := harness.Start(t)
	h, p := hostPort(y.AMQPAddr)
	runChecks(t, []string{"server-version", "update-secret", "tx-ack-unknown", "auth-failure-close"},
		tools["PYTHON"], filepath.Join(here, "python", "connection_features.py"), h, p)
}

func TestAmqplibFeatures(t *testing.T) {
	y := harness.Start(t)
	runChecks(t, []string{"confirms", "fanout-a", "consume-all", "headers-route"},
		"node", filepath.Join(here, "node", "features.js"), "amqp://guest:guest@"+y.AMQPAddr)
}

// TestAmqplibClosing: channels and connections end as amqplib expects of RabbitMQ (confirms
// before channel.close-ok; close-ok and a clean end of stream with publishes in flight).
func TestAmqplibClosing(t *testing.T) {
	y := harness.Start(t)
	runChecks(t, []string{"confirm-close", "close-in-flight"},
		"node", filepath.Join(here, "node", "closing.js"), "amqp://guest:guest@"+y.AMQPAddr)
}

func TestAmqpTools(t *testing.T) {
	y := harness.Start(t)
	url := "amqp://guest:guest@" + y.AMQPAddr
	c, err := amqp091.Dial(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("tools", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"first", "second"} {
		out, err := exec.Command(tools["AMQP_PUBLISH"], "--url", url, "-r", "tools", "-b", body).CombinedOutput()
		if err != nil {
			t.Fatalf("amqp-publish: %v\n%s", err, out)
		}
	}
	out, err := exec.Command(tools["AMQP_CONSUME"], "--url", url, "-q", "tools", "-c", "2", "cat").CombinedOutput()
	if err != nil {
		t.Fatalf("amqp-consume: %v\n%s", err, out)
	}
	if string(out) != "firstsecond" {
		t.Fatalf("amqp-consume printed %q", out)
	}
	q, err := ch.QueueDeclarePassive("tools", false, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("queue after amqp-consume: %+v %v", q, err)
	}
}

// driverProc is one driver app process; its stdout lines become events.
type driverProc struct {
	name string
	cmd  *exec.Cmd
}

type event struct {
	driver, kind, route string
	redelivered         bool
}

type driverFactory func(host, port, mode string) *exec.Cmd

func startDriver(t *testing.T, name string, cmd *exec.Cmd, events chan<- event) *driverProc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			ev := event{driver: name, kind: f[0]}
			if len(f) > 1 {
				ev.route = f[1]
			}
			ev.redelivered = len(f) > 2 && f[2] == "true"
			events <- ev
		}
	}()
	return &driverProc{name: name, cmd: cmd}
}

// seedScenario is the seed's requirement 2 with real driver apps: routes are published to the
// durable queue route-dispatch; a first driver takes route-00 and holds it; the other drivers
// take and ack all the others (one route is nacked with requeue once); the first driver is
// killed with SIGKILL; route-00 must then go to another driver flagged redelivered. No route
// may be held by two drivers at once, every route is acked exactly once, the queue ends empty.
func seedScenario(t *testing.T, victim driverFactory, workers ...driverFactory) {
	y := harness.Start(t)
	host, port := hostPort(y.AMQPAddr)
	c, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("route-dispatch", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 30
	routes := map[string]bool{}
	for i := 0; i < n; i++ {
		r := fmt.Sprintf("route-%02d", i)
		if i == 5 {
			r = "nack-once-05"
		}
		routes[r] = true
		if err := ch.Publish("", "route-dispatch", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(r)}); err != nil {
			t.Fatal(err)
		}
	}
	events := make(chan event, 1000)
	holder := map[string]string{}
	acked := map[string]int{}
	var mu sync.Mutex
	next := func(what string) event {
		select {
		case ev := <-events:
			mu.Lock()
			defer mu.Unlock()
			switch ev.kind {
			case "GOT":
				if h, ok := holder[ev.route]; ok {
					t.Fatalf("route %s delivered to %s while %s holds it", ev.route, ev.driver, h)
				}
				holder[ev.route] = ev.driver
			case "ACK":
				delete(holder, ev.route)
				acked[ev.route]++
			case "NACK":
				delete(holder, ev.route)
			}
			return ev
		case <-time.After(60 * time.Second):
			t.Fatalf("timed out waiting for %s; holders %v acked %d", what, holder, len(acked))
		}
		return event{}
	}
	v := startDriver(t, "victim", victim(host, port, "hold"), events)
	for ev := next("victim's route"); ev.kind != "GOT"; ev = next("victim's route") {
	}
	if holder["route-00"] != "victim" {
		t.Fatalf("victim holds %v", holder)
	}
	for i, w := range workers {
		startDriver(t, fmt.Sprintf("driver-%d", i+1), w(host, port, "work"), events)
	}
	for len(acked) < n-1 {
		next("the other routes")
	}
	// The victim's app crashes: kill -9, the TCP connection drops without a close.
	mu.Lock()
	delete(holder, "route-00")
	mu.Unlock()
	v.cmd.Process.Kill()
	var redelivery event
	for acked["route-00"] == 0 {
		if ev := next("route-00's redelivery"); ev.kind == "GOT" && ev.route == "route-00" {
			redelivery = ev
		}
	}
	if !redelivery.redelivered || redelivery.driver == "victim" {
		t.Fatalf("route-00 redelivered as %+v", redelivery)
	}
	for r := range routes {
		if acked[r] != 1 {
			t.Errorf("route %s acked %d times", r, acked[r])
		}
	}
	q, err := ch.QueueDeclarePassive("route-dispatch", true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("queue ends with %+v %v", q, err)
	}
}

func javaDriver(host, port, mode string) *exec.Cmd {
	return exec.Command("java", "-cp", tools["JAVA_CP"], "yard.interop.Driver", host, port, mode)
}

func pikaDriver(host, port, mode string) *exec.Cmd {
	return exec.Command(tools["PYTHON"], filepath.Join(here, "python", "driver.py"), host, port, mode)
}

func amqplibDriver(host, port, mode string) *exec.Cmd {
	cmd := exec.Command("node", filepath.Join(here, "node", "driver.js"), "amqp://guest:guest@"+net.JoinHostPort(host, port), mode)
	cmd.Env = append(os.Environ(), "NODE_PATH="+tools["NODE_PATH"])
	return cmd
}

func TestSeedDispatchJava(t *testing.T) { seedScenario(t, javaDriver, javaDriver, javaDriver) }

func TestSeedDispatchPika(t *testing.T) { seedScenario(t, pikaDriver, pikaDriver, pikaDriver) }

// TestSeedDispatchMixed lets a Java driver crash; a pika driver and an amqplib driver pick up
// its routes.
func TestSeedDispatchMixed(t *testing.T) { seedScenario(t, javaDriver, pikaDriver, amqplibDriver) }

func TestPikaQueueFeatures(t *testing.T) {
	y := harness.Start(t)
	h, p := hostPort(y.AMQPAddr)
	runChecks(t, []string{"ttl-dead-lettered", "drop-head-maxlen", "delivery-limit", "priority-order", "single-active-consumer", "reject-publish-nack"},
		tools["PYTHON"], filepath.Join(here, "python", "queue_features.py"), h, p)
}
