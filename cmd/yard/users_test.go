package main

import (
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestUsersCLIOffline manages a stopped server's data directory, then serves it: the users
// and permissions made offline log in; a running server's data dir is refused with advice.
func TestUsersCLIOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	dd := []string{"--data-dir", dir}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runYard(t, stdin, append(args, dd...)...)
		if err != nil {
			t.Fatalf("yard %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	must("", "vhosts", "add", "orders")
	must("s3cret\n", "users", "add", "alice", "--password-stdin", "--tags", "monitoring")
	must("", "permissions", "set", "alice", "--vhost", "orders", "--configure", ".*", "--write", ".*", "--read", ".*")
	must("", "users", "add", "bob", "--password", "bob-pw")
	must("", "users", "passwd", "bob", "--password", "bob-pw2")
	if out := must("", "users", "list"); !strings.Contains(out, "alice") || !strings.Contains(out, "monitoring") || !strings.Contains(out, "guest") {
		t.Fatalf("users list:\n%s", out)
	}
	if out := must("", "permissions", "list"); !strings.Contains(out, "orders") {
		t.Fatalf("permissions list:\n%s", out)
	}
	if _, _, err := runYard(t, "", append([]string{"users", "add", "alice", "--password", "x"}, dd...)...); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("adding alice twice: %v", err)
	}

	y := harness.Start(t, harness.WithDataDir(dir))
	c, err := amqp091.Dial("amqp://alice:s3cret@" + y.AMQPAddr + "/orders")
	if err != nil {
		t.Fatalf("alice on orders: %v", err)
	}
	c.Close()
	if _, err := amqp091.Dial("amqp://alice:s3cret@" + y.AMQPAddr + "/"); err == nil {
		t.Fatal("alice opened / without permissions")
	}
	_, _, err = runYard(t, "", append([]string{"users", "list"}, dd...)...)
	if err == nil || !strings.Contains(err.Error(), "--http") {
		t.Fatalf("offline command on a running server's data dir: %v", err)
	}
}

// TestUsersCLIOnline manages a running server through its admin API.
func TestUsersCLIOnline(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	api := []string{"--http", "http://" + y.HTTPAddr, "--user", "guest", "--admin-password", "guest"}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runYard(t, stdin, append(args, api...)...)
		if err != nil {
			t.Fatalf("yard %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	must("", "vhosts", "add", "v2")
	must("carol-pw\n", "users", "add", "carol", "--password-stdin")
	must("", "permissions", "set", "carol", "--vhost", "v2", "--configure", "^c", "--write", ".*", "--read", ".*")
	c, err := amqp091.Dial("amqp://carol:carol-pw@" + y.AMQPAddr + "/v2")
	if err != nil {
		t.Fatalf("carol on v2 (added while running): %v", err)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("d-queue", false, true, false, false, nil); err == nil {
		t.Fatal("carol declared a queue outside her configure pattern")
	}
	c.Close()
	must("", "users", "passwd", "carol", "--password", "new")
	if _, err := amqp091.Dial("amqp://carol:carol-pw@" + y.AMQPAddr + "/v2"); err == nil {
		t.Fatal("old password accepted")
	}
	if out := must("", "users", "list"); !strings.Contains(out, "carol") {
		t.Fatalf("users list:\n%s", out)
	}
	must("", "users", "limits", "carol", "--max-connections", "5")
	if out := must("", "users", "list"); !strings.Contains(out, "max-connections=5") {
		t.Fatalf("limits not listed:\n%s", out)
	}
	live, err := amqp091.Dial("amqp://carol:new@" + y.AMQPAddr + "/v2")
	if err != nil {
		t.Fatalf("carol with her new password: %v", err)
	}
	closed := live.NotifyClose(make(chan *amqp091.Error, 1))
	must("", "users", "delete", "carol")
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp091.ConnectionForced || !strings.Contains(e.Reason, "carol") {
			t.Fatalf("carol's connection closed with %v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a deleted user's connection stayed open")
	}
	must("", "vhosts", "delete", "v2")
	if out := must("", "vhosts", "list"); strings.Contains(out, "v2") {
		t.Fatalf("v2 still listed:\n%s", out)
	}
	// Wrong administrator credentials.
	_, _, err = runYard(t, "", "users", "list", "--http", "http://"+y.HTTPAddr, "--user", "guest", "--admin-password", "nope")
	if err == nil || !strings.Contains(err.Error(), "Login failed") {
		t.Fatalf("wrong admin password: %v", err)
	}
}
