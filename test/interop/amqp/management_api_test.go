package amqp_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
