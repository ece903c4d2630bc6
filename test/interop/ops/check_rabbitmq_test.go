package ops

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// Nagios plugin exit codes.
const (
	ok       = 0
	warning  = 1
	critical = 2
	unknown  = 3
)

// checker runs one check_rabbitmq_* plugin against a yard's management API.
type checker struct {
	t    *testing.T
	dir  string
	port string
}

func newChecker(t *testing.T, y *harness.Yard) checker {
	_, port := hostPort(t, y.HTTPAddr)
	return checker{t: t, dir: filepath.Dir(tools["CHECK_RABBITMQ_QUEUE"]), port: port}
}

// run runs check_rabbitmq_<name> with the host (localhost: the node checks derive the node
// name rabbit@localhost from it), port and args, and wants exit code want and out in its
// output.
func (c checker) run(name string, want int, out string, args ...string) string {
	c.t.Helper()
	all := append([]string{"-H", "localhost", "--port", c.port}, args...)
	if name == "shovels" {
		all = append([]string{"-H", "localhost", "-P", c.port}, args...)
	}
	cmd := exec.Command(filepath.Join(c.dir, "check_rabbitmq_"+name), all...)
	b, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, isExit := err.(*exec.ExitError)
		if !isExit {
			c.t.Fatalf("check_rabbitmq_%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	s := string(b)
	if code != want || !strings.Contains(s, out) || strings.Contains(s, "uninitialized") {
		c.t.Errorf("check_rabbitmq_%s %s: exit %d, want %d with %q:\n%s", name, strings.Join(args, " "), code, want, out, s)
	}
	return s
}

// TestCheckRabbitMQ runs every check of Debian's nagios-plugins-rabbitmq that applies to
// yard, with thresholds on both sides of yard's real values.
func TestCheckRabbitMQ(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	c := newChecker(t, y)

	conn, err := amqp.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		dc, err := ch.PublishWithDeferredConfirm("", "orders", false, false, amqp.Publishing{Body: []byte("o")})
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatal("publish nacked")
		}
	}

	c.run("aliveness", ok, "RABBITMQ_ALIVENESS OK - vhost: /")
	c.run("aliveness", unknown, "Not found: nope", "--vhost", "nope") // 404, as RabbitMQ's

	// overview: thresholds on messages, messages_ready, messages_unacknowledged.
	c.run("overview", ok, "messages OK (5) messages_ready OK (5) messages_unacknowledged OK (0)")
	c.run("overview", warning, "messages WARNING (5)", "-w", "3,100,100", "-c", "10,100,100")
	c.run("overview", critical, "messages_ready CRITICAL (5)", "-w", "100,3,100", "-c", "100,4,100")

	// queue: thresholds on messages, messages_ready, messages_unacknowledged, consumers.
	c.run("queue", ok, "messages OK (5) messages_ready OK (5) messages_unacknowledged OK (0) consumers OK (0)",
		"--queue", "orders", "-w", "100", "-c", "200")
	c.run("queue", warning, "messages WARNING (5)", "--queue", "orders", "-w", "3", "-c", "10")
	c.run("queue", critical, "messages CRITICAL (5)", "--queue", "orders", "-w", "3", "-c", "4")
	c.run("queue", critical, "Not Found", "--queue", "missing")
	// A consumer with an unacknowledged delivery: unacknowledged over its threshold.
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("orders", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-deliveries
	c.run("queue", critical, "messages_unacknowledged CRITICAL (1)", "--queue", "orders", "-w", "-1,-1,0", "-c", "-1,-1,0")
	c.run("queue", ok, "consumers OK (1)", "--queue", "orders", "-w", "-1,-1,-1,1", "-c", "-1,-1,-1,1")

	// server: memory, processes (goroutines), file descriptors and sockets in percent of
	// their limits, from /api/nodes/rabbit@localhost.
	c.run("server", ok, "RABBITMQ_SERVER OK - Memory OK")
	c.run("server", warning, "Memory WARNING", "-w", "0.0001,80,80,80", "-c", "90,90,90,90")
	c.run("server", critical, "FD CRITICAL", "-w", "80,80,0.0001,80", "-c", "90,90,0.0001,90")
	c.run("server", unknown, "Not found", "--node", "elsewhere")

	c.run("watermark", ok, "RABBITMQ_WATERMARK OK - mem_alarm disk_free_alarm")
	c.run("partition", ok, "RABBITMQ_PARTITION OK - No Partitions")

	c.run("connections", ok, "connections OK (1) connections_notrunning OK (0)")
	c.run("connections", critical, "connections CRITICAL (1)", "-w", "0", "-c", "0")
	c.run("connections", ok, "connections OK (0)", "--clientuser", "nobody")

	// objects counts vhosts, exchanges, bindings, queues and channels (the plugin reports
	// each list's last index, one less than its length).
	c.run("objects", ok, "queue=0;; channel=0;;")
}

// TestCheckRabbitMQWatermark: a disk free limit above the disk's size raises yard's disk
// alarm, which check_rabbitmq_watermark reports CRITICAL.
func TestCheckRabbitMQWatermark(t *testing.T) {
	t.Parallel()
	y := harness.Start(t, harness.WithArgs("--amqp-disk-free-limit-bytes", "1000000000000000000"))
	// The alarm is raised by yard's first resource check, right after start: wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n struct {
			DiskFreeAlarm bool `json:"disk_free_alarm"`
		}
		code, body := api(t, y, "GET", "/api/nodes/rabbit@localhost", "")
		if code == http.StatusOK && json.Unmarshal([]byte(body), &n) == nil && n.DiskFreeAlarm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no disk alarm: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	newChecker(t, y).run("watermark", critical, "RABBITMQ_WATERMARK CRITICAL - disk_free_alarm, mem_alarm")
}
