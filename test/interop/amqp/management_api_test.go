package amqp_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestRabbitmqadmin drives yard's management API with RabbitMQ's own rabbitmqadmin (from the
// management plugin): declare, list, bind, export, delete, import.
func TestRabbitmqadmin(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	host, port := hostPort(y.HTTPAddr)
	ra := func(args ...string) string {
		t.Helper()
		all := append([]string{"-H", host, "-P", port, "-u", "guest", "-p", "guest"}, args...)
		out, err := exec.Command(tools["RABBITMQADMIN"], all...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "***") {
			t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ra("declare", "queue", "name=orders", "durable=true")
	ra("declare", "exchange", "name=events", "type=topic")
	ra("declare", "binding", "source=events", "destination=orders", "routing_key=order.*")
	if out := ra("list", "queues"); !strings.Contains(out, "orders") {
		t.Fatalf("list queues:\n%s", out)
	}
	if out := ra("list", "bindings"); !strings.Contains(out, "order.*") {
		t.Fatalf("list bindings:\n%s", out)
	}
	if out := ra("show", "overview"); !strings.Contains(out, "3.13.0") {
		t.Fatalf("show overview:\n%s", out)
	}
	defs := filepath.Join(t.TempDir(), "defs.json")
	ra("export", defs)
	data, err := os.ReadFile(defs)
	if err != nil || !strings.Contains(string(data), `"name":"orders"`) || !strings.Contains(string(data), `"routing_key":"order.*"`) {
		t.Fatalf("export: %v\n%s", err, data)
	}
	ra("delete", "queue", "name=orders")
	ra("delete", "exchange", "name=events")
	if out := ra("list", "queues"); strings.Contains(out, "orders") {
		t.Fatalf("queue not deleted:\n%s", out)
	}
	ra("import", defs)
	if out := ra("list", "bindings"); !strings.Contains(out, "order.*") {
		t.Fatalf("bindings after import:\n%s", out)
	}
}

// TestRabbitmqadminPublishGet publishes with rabbitmqadmin (properties, payload given and
// from stdin, unroutable) and gets with every ackmode, and checks what an AMQP consumer
// receives.
func TestRabbitmqadminPublishGet(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	host, port := hostPort(y.HTTPAddr)
	ra := func(stdin string, args ...string) string {
		t.Helper()
		all := append([]string{"-H", host, "-P", port, "-u", "guest", "-p", "guest"}, args...)
		cmd := exec.Command(tools["RABBITMQADMIN"], all...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "***") {
			t.Fatalf("rabbitmqadmin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	type got struct {
		Payload         string `json:"payload"`
		PayloadEncoding string `json:"payload_encoding"`
		Redelivered     bool   `json:"redelivered"`
		MessageCount    int    `json:"message_count"`
		PayloadBytes    int    `json:"payload_bytes"`
		RoutingKey      string `json:"routing_key"`
	}
	get := func(ackmode, count string) []got {
		t.Helper()
		out := ra("", "-f", "raw_json", "get", "queue=work", "ackmode="+ackmode, "count="+count)
		var ms []got
		if err := json.Unmarshal([]byte(out), &ms); err != nil {
			t.Fatalf("get %s: %v\n%s", ackmode, err, out)
		}
		return ms
	}
	payloads := func(ms []got) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Payload)
		}
		return strings.Join(s, ",")
	}
	ra("", "declare", "queue", "name=work", "durable=true")
	ra("", "declare", "exchange", "name=jobs", "type=direct")
	ra("", "declare", "binding", "source=jobs", "destination=work", "routing_key=job")

	// Published with properties, consumed over AMQP.
	if out := ra("", "publish", "exchange=jobs", "routing_key=job", "payload=first",
		`properties={"content_type":"text/plain","delivery_mode":2,"headers":{"attempt":1,"origin":"cli"}}`); !strings.Contains(out, "Message published") || strings.Contains(out, "NOT routed") {
		t.Fatalf("publish: %s", out)
	}
	_, ch := dialY(t, y)
	deliveries, err := ch.Consume("work", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	receive := func() amqp091.Delivery {
		t.Helper()
		select {
		case d := <-deliveries:
			if err := d.Ack(false); err != nil {
				t.Fatal(err)
			}
			return d
		case <-time.After(30 * time.Second):
			t.Fatal("the AMQP consumer received nothing")
		}
		return amqp091.Delivery{}
	}
	d := receive()
	if string(d.Body) != "first" || d.ContentType != "text/plain" || d.DeliveryMode != 2 || d.Exchange != "jobs" ||
		d.RoutingKey != "job" || d.Headers["attempt"] != int64(1) || d.Headers["origin"] != "cli" {
		t.Fatalf("AMQP consumer got %+v", d)
	}
	// No payload argument: rabbitmqadmin reads stdin (text: it encodes it as UTF-8 first)
	// and sends it base64-encoded.
	ra("from stdin \u2713\n", "publish", "routing_key=work")
	if d := receive(); string(d.Body) != "from stdin \u2713\n" || d.Exchange != "" {
		t.Fatalf("AMQP consumer got %q from exchange %q", d.Body, d.Exchange)
	}
	if err := ch.Cancel(d.ConsumerTag, false); err != nil {
		t.Fatal(err)
	}
	if out := ra("", "publish", "routing_key=nosuchqueue", "payload=lost"); !strings.Contains(out, "NOT routed") {
		t.Fatalf("unroutable publish: %s", out)
	}

	// Every ackmode.
	ra("", "publish", "routing_key=work", "payload=m1")
	ra("", "publish", "routing_key=work", "payload=m2")
	if ms := get("ack_requeue_true", "2"); payloads(ms) != "m1,m2" || ms[0].Redelivered || ms[0].MessageCount != 1 || ms[0].PayloadEncoding != "string" {
		t.Fatalf("ack_requeue_true: %+v", ms)
	}
	if ms := get("reject_requeue_true", "5"); payloads(ms) != "m1,m2" || !ms[0].Redelivered || !ms[1].Redelivered {
		t.Fatalf("reject_requeue_true: %+v", ms)
	}
	if ms := get("reject_requeue_false", "1"); payloads(ms) != "m1" {
		t.Fatalf("reject_requeue_false: %+v", ms)
	}
	if ms := get("ack_requeue_false", "5"); payloads(ms) != "m2" || ms[0].MessageCount != 0 {
		t.Fatalf("ack_requeue_false: %+v", ms)
	}
	if ms := get("ack_requeue_false", "5"); len(ms) != 0 {
		t.Fatalf("queue not empty: %+v", ms)
	}
	// The default table output, as an operator reads it.
	ra("", "publish", "routing_key=work", "payload=shown")
	if out := ra("", "get", "queue=work", "ackmode=ack_requeue_true"); !strings.Contains(out, "shown") || !strings.Contains(out, "payload_bytes") {
		t.Fatalf("get table:\n%s", out)
	}
	// What get left is still there for a consumer.
	deliveries, err = ch.Consume("work", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := receive(); string(d.Body) != "shown" || !d.Redelivered {
		t.Fatalf("after get: %q redelivered=%v", d.Body, d.Redelivered)
	}
}
