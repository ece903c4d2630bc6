package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// TestAMQPAdminCLI drives yard queues|exchanges|bindings|connections against a running
// server: tables, -o json, purge, delete, closing a connection, and the advice when the
// server cannot be reached.
func TestAMQPAdminCLI(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	conn, err := amqp091.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
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
	if err := ch.ExchangeDeclare("events", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("orders", "order.*", "events", false, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ch.Publish("", "orders", false, false, amqp091.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	api := []string{"--http", "http://" + y.HTTPAddr}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := runYard(t, "", append(args, api...)...)
		if err != nil {
			t.Fatalf("yard %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	// Publishes are asynchronous: wait until both are counted.
	waitFor(t, func() bool {
		var qs []apiQueue
		return json.Unmarshal([]byte(must("queues", "list", "-o", "json")), &qs) == nil && len(qs) == 1 && qs[0].MessagesReady == 2
	})
	if out := must("queues", "list"); !strings.Contains(out, "NAME") || !regexpLine(out, `orders\s+classic\s+true\s+2\s+2\s+0\s+0`) {
		t.Fatalf("queues list:\n%s", out)
	}
	if out := must("queues", "describe", "orders"); !strings.Contains(out, "Ready:") {
		t.Fatalf("queues describe:\n%s", out)
	}
	if out := must("exchanges", "list"); !regexpLine(out, `events\s+topic\s+true`) || !strings.Contains(out, "(AMQP default)") {
		t.Fatalf("exchanges list:\n%s", out)
	}
	if out := must("bindings", "list"); !regexpLine(out, `events\s+orders\s+queue\s+order\.\*`) {
		t.Fatalf("bindings list:\n%s", out)
	}
	must("queues", "purge", "orders")
	var q apiQueue
	if err := json.Unmarshal([]byte(must("queues", "describe", "orders", "-o", "json")), &q); err != nil || q.Messages != 0 {
		t.Fatalf("after purge: %+v %v", q, err)
	}
	var cs, amqpConns []apiConnection
	if err := json.Unmarshal([]byte(must("connections", "list", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Protocol == "AMQP 0-9-1" {
			amqpConns = append(amqpConns, c)
		}
	}
	if len(amqpConns) != 1 {
		t.Fatalf("connections: %+v", cs)
	}
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	must("connections", "close", formatUint(amqpConns[0].ID), "--reason", "bye")
	select {
	case e := <-closed:
		if e == nil || !strings.Contains(e.Reason, "bye") {
			t.Fatalf("connection close: %v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed")
	}
	must("queues", "delete", "orders")
	if _, _, err := runYard(t, "", append([]string{"queues", "describe", "orders"}, api...)...); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("describe deleted queue: %v", err)
	}
	if _, _, err := runYard(t, "", "queues", "list", "--http", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "is `yard serve` running?") {
		t.Fatalf("unreachable server: %v", err)
	}
	if _, _, err := runYard(t, "", append([]string{"queues", "list", "--password", "wrong"}, api...)...); err == nil || !strings.Contains(err.Error(), "--password") {
		t.Fatalf("wrong password: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func regexpLine(out, re string) bool { return regexp.MustCompile(`(?m)^` + re).MatchString(out) }

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }
