package ops

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// tofuConfig creates, through the Terraform RabbitMQ provider, what an operator declares for
// an application: a vhost, a user with permissions, an exchange, a queue with arguments and
// a binding. %s is the management API's URL.
const tofuConfig = `
terraform {
  required_providers {
    rabbitmq = { source = "cyrilgdn/rabbitmq" }
  }
}

provider "rabbitmq" {
  endpoint = "%s"
  username = "guest"
  password = "guest"
}

resource "rabbitmq_vhost" "shop" {
  name = "shop"
}

resource "rabbitmq_user" "app" {
  name     = "app"
  password = "app-secret"
  tags     = ["management"]
}

resource "rabbitmq_permissions" "app" {
  user  = rabbitmq_user.app.name
  vhost = rabbitmq_vhost.shop.name
  permissions {
    configure = "^orders"
    write     = ".*"
    read      = ".*"
  }
}

resource "rabbitmq_permissions" "guest" {
  user  = "guest"
  vhost = rabbitmq_vhost.shop.name
  permissions {
    configure = ".*"
    write     = ".*"
    read      = ".*"
  }
}

resource "rabbitmq_exchange" "events" {
  name  = "events"
  vhost = rabbitmq_permissions.guest.vhost
  settings {
    type        = "topic"
    durable     = true
    auto_delete = false
  }
}

resource "rabbitmq_queue" "orders" {
  name  = "orders"
  vhost = rabbitmq_permissions.guest.vhost
  settings {
    durable        = true
    auto_delete    = false
    arguments_json = jsonencode({ "x-max-length" = 1000, "x-dead-letter-exchange" = "events" })
  }
}

resource "rabbitmq_binding" "orders" {
  source           = rabbitmq_exchange.events.name
  vhost            = rabbitmq_permissions.guest.vhost
  destination      = rabbitmq_queue.orders.name
  destination_type = "queue"
  routing_key      = "order.*"
}
`

// TestOpenTofuRabbitMQProvider applies a configuration with OpenTofu and the Terraform
// RabbitMQ provider (both built by setup.sh with YARD_OPS_TOOLS=1), checks what yard holds,
// plans again (no changes: the API returns what was set), sees drift, is refused a policy
// (yard has none), and destroys it all.
func TestOpenTofuRabbitMQProvider(t *testing.T) {
	tofu := tool(t, "TOFU")
	provider := tool(t, "TERRAFORM_PROVIDER_RABBITMQ")
	t.Parallel()
	y := harness.Start(t)
	dir := t.TempDir()
	cli := filepath.Join(dir, "tofu.rc")
	// dev_overrides: the provider binary built here stands for cyrilgdn/rabbitmq; no
	// registry is asked (and `tofu init` is not needed).
	rc := `provider_installation {
  dev_overrides {
    "cyrilgdn/rabbitmq" = "` + filepath.Dir(provider) + `"
  }
}
`
	if err := os.WriteFile(cli, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "config")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(strings.Replace(tofuConfig, "%s", "http://"+y.HTTPAddr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(tofu, append(args, "-no-color", "-input=false")...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cli, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
			"TF_DATA_DIR="+filepath.Join(dir, "data"))
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("tofu %s: %v", strings.Join(args, " "), err)
		}
		if code != wantCode {
			t.Fatalf("tofu %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return string(out)
	}

	if out := run(0, "apply", "-auto-approve"); !strings.Contains(out, "Apply complete! Resources: 7 added, 0 changed, 0 destroyed.") {
		t.Fatalf("apply:\n%s", out)
	}
	var q struct {
		Durable   bool           `json:"durable"`
		Arguments map[string]any `json:"arguments"`
	}
	if code, body := api(t, y, "GET", "/api/queues/shop/orders", ""); code != http.StatusOK || json.Unmarshal([]byte(body), &q) != nil ||
		!q.Durable || q.Arguments["x-max-length"] != float64(1000) || q.Arguments["x-dead-letter-exchange"] != "events" {
		t.Fatalf("queue after apply: %d %s", code, body)
	}
	if code, body := api(t, y, "GET", "/api/bindings/shop/e/events/q/orders", ""); code != http.StatusOK || !strings.Contains(body, `"routing_key":"order.*"`) {
		t.Fatalf("binding after apply: %d %s", code, body)
	}
	// The user the provider created logs in over AMQP with its permissions.
	conn, err := amqp.Dial("amqp://app:app-secret@" + y.AMQPAddr + "/shop")
	if err != nil {
		t.Fatalf("the provider's user cannot connect: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("events", "order.new", false, false, amqp.Publishing{Body: []byte("o")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("not-allowed", false, true, false, false, nil); err == nil {
		t.Fatal("the provider's configure permission ^orders allowed declaring another queue")
	}
	conn.Close()

	// Plan: nothing to change, every attribute read back as set.
	if out := run(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after apply:\n%s", out)
	}
	// A change made behind the provider's back shows as drift.
	if code, body := api(t, y, "DELETE", "/api/bindings/shop/e/events/q/orders/order.*", ""); code != http.StatusNoContent {
		t.Fatalf("delete binding: %d %s", code, body)
	}
	if out := run(2, "plan", "-detailed-exitcode"); !strings.Contains(out, "1 to add, 0 to change, 0 to destroy") {
		t.Fatalf("plan after the binding was deleted:\n%s", out)
	}

	// A policy: yard has none, and the provider's apply fails with yard's reason instead of
	// storing one that nothing would apply (the same apply puts the deleted binding back).
	policy := `
resource "rabbitmq_policy" "max" {
  name  = "max-length"
  vhost = rabbitmq_permissions.guest.vhost
  policy {
    pattern    = ".*"
    priority   = 0
    apply_to   = "queues"
    definition = { "max-length" = 10 }
  }
}
`
	f, err := os.OpenFile(filepath.Join(work, "main.tf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(policy); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out := run(1, "apply", "-auto-approve"); !strings.Contains(out, "yard has no policies") {
		t.Fatalf("apply with a policy:\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(strings.Replace(tofuConfig, "%s", "http://"+y.HTTPAddr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	if out := run(0, "destroy", "-auto-approve"); !strings.Contains(out, "Destroy complete! Resources: 7 destroyed.") {
		t.Fatalf("destroy:\n%s", out)
	}
	for _, path := range []string{"/api/vhosts/shop", "/api/users/app", "/api/queues/shop/orders"} {
		if code, body := api(t, y, "GET", path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s after destroy: %d %s", path, code, body)
		}
	}
}
