package amqp_test

// kill -9 and the queue features whose state lives in the queue store: delivery counts
// (x-delivery-limit, x-delivery-count) and priority levels (x-max-priority, one paged store
// per level). Only what yard confirmed is promised, so every publish here waits for its
// confirm before the kill.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// settledLogBytes is the size of a durable queue's settlement log (acks, delivery counts).
func settledLogBytes(t *testing.T, y *harness.Yard, queue string) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(y.DataDir, "queues", "%2F", queue, "settled", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// waitSettledGrowth waits until the queue's settlement log is larger than before: a delivery
// count is written (not fsynced: kill -9 keeps the page cache) a few milliseconds after the
// nack, and only a written count can survive the kill.
func waitSettledGrowth(t *testing.T, y *harness.Yard, queue string, before int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for settledLogBytes(t, y, queue) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("the settlement log of %s did not grow past %d bytes after a nack", queue, before)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func headerInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int16:
		return int64(n), true
	case int8:
		return int64(n), true
	}
	return 0, false
}

// TestDeliveryCountSurvivesKill9: a message nacked with requeue keeps its x-delivery-count
// across kill -9 (twice), and is dead-lettered (reason delivery_limit) exactly when the count
// passes x-delivery-limit, counting the deliveries before the kills.
func TestDeliveryCountSurvivesKill9(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	const limit = 4
	args := amqp091.Table{"x-delivery-limit": int32(limit), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "poison.dead"}
	if _, err := ch.QueueDeclare("poison", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("poison.dead", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"poison", "bystander"} {
		dc, err := ch.PublishWithDeferredConfirm("", "poison", false, false, amqp091.Publishing{
			DeliveryMode: 2, Headers: amqp091.Table{"h": body}, Body: []byte(body)})
		if err != nil || !dc.Wait() {
			t.Fatalf("publish %s: %v", body, err)
		}
	}
	// get takes the poison message (the head) and checks the count it carries.
	get := func(wantCount int64) amqp091.Delivery {
		t.Helper()
		m, ok, err := ch.Get("poison", false)
		if err != nil || !ok {
			t.Fatalf("get (expecting x-delivery-count %d): ok=%v err=%v", wantCount, ok, err)
		}
		got, has := headerInt(m.Headers["x-delivery-count"])
		if string(m.Body) != "poison" || m.Headers["h"] != "poison" {
			t.Fatalf("got %q (headers %v), want the poison message", m.Body, m.Headers)
		}
		if wantCount == 0 && has || wantCount > 0 && got != wantCount {
			t.Fatalf("x-delivery-count = %v (present %v), want %d", m.Headers["x-delivery-count"], has, wantCount)
		}
		if wantCount > 0 && !m.Redelivered {
			t.Fatalf("delivery %d not flagged redelivered", wantCount)
		}
		return m
	}
	nack := func(m amqp091.Delivery) {
		t.Helper()
		before := settledLogBytes(t, y, "poison")
		if err := m.Nack(false, true); err != nil {
			t.Fatal(err)
		}
		waitSettledGrowth(t, y, "poison", before)
	}
	restart := func() {
		t.Helper()
		y.Kill()
		y.Restart()
		_, ch = dialY(t, y)
	}
	count := int64(0)
	for _, nacksThenKill := range []int{2, 1} {
		for range nacksThenKill {
			nack(get(count))
			count++
		}
		restart()
	}
	for count <= limit {
		m := get(count)
		if err := m.Nack(false, true); err != nil {
			t.Fatal(err)
		}
		count++
	}
	// The nack of delivery limit+1 (x-delivery-count limit) dead-letters it.
	var dead amqp091.Delivery
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, ok, err := ch.Get("poison.dead", false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			dead = m
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poison message was not dead-lettered after its last allowed delivery")
		}
		time.Sleep(5 * time.Millisecond)
	}
	deaths, _ := dead.Headers["x-death"].([]any)
	if string(dead.Body) != "poison" || len(deaths) != 1 {
		t.Fatalf("dead-lettered %q with x-death %v", dead.Body, dead.Headers["x-death"])
	}
	if d, _ := deaths[0].(amqp091.Table); d["reason"] != "delivery_limit" || d["queue"] != "poison" {
		t.Fatalf("x-death %v, want reason delivery_limit from queue poison", d)
	}
	// The bystander was never delivered: it is next, without a count.
	m, ok, err := ch.Get("poison", true)
	if err != nil || !ok || string(m.Body) != "bystander" {
		t.Fatalf("bystander: %q %v %v", m.Body, ok, err)
	}
	if _, has := m.Headers["x-delivery-count"]; has {
		t.Fatalf("the bystander carries x-delivery-count %v", m.Headers["x-delivery-count"])
	}
	if m, ok, _ := ch.Get("poison", true); ok {
		t.Fatalf("poison queue still holds %q", m.Body)
	}
}

// TestPriorityQueueSurvivesKill9: a durable priority queue holding more confirmed messages
// than the in-memory window (4 MiB), at mixed priorities (some above x-max-priority, some
// without one), is delivered after kill -9 highest priority first and in publish order within
// a priority, every message intact.
func TestPriorityQueueSurvivesKill9(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	_, ch := dialY(t, y)
	const maxPriority, total = 5, 6000 // 6000 messages of 1 KiB: 6 MiB
	if _, err := ch.QueueDeclare("prio", true, false, false, false, amqp091.Table{"x-max-priority": int32(maxPriority)}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, total))
	level := make([]int, total) // the effective priority of message i
	for i := range total {
		p := amqp091.Publishing{DeliveryMode: 2, MessageId: fmt.Sprint(i), Headers: amqp091.Table{"i": int64(i)}}
		switch {
		case i%11 == 0: // no priority property: priority 0
		case i%13 == 0: // above x-max-priority: treated as the maximum
			p.Priority, level[i] = 9, maxPriority
		default:
			p.Priority = uint8(i * 7 % (maxPriority + 1))
			level[i] = int(p.Priority)
		}
		p.Body = bodyFor("m" + p.MessageId)
		if err := ch.Publish("", "prio", false, false, p); err != nil {
			t.Fatal(err)
		}
	}
	for range total {
		if cf := <-confirms; !cf.Ack {
			t.Fatalf("publish %d nacked", cf.DeliveryTag)
		}
	}
	y.Kill()
	y.Restart()
	_, ch = dialY(t, y)
	q, err := ch.QueueDeclarePassive("prio", true, false, false, false, amqp091.Table{"x-max-priority": int32(maxPriority)})
	if err != nil || q.Messages != total {
		t.Fatalf("after kill -9: %+v %v, want %d messages", q, err, total)
	}
	if err := ch.Qos(200, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume("prio", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Expected: by level descending, then by publish order.
	var want []int
	for lv := maxPriority; lv >= 0; lv-- {
		for i := range total {
			if level[i] == lv {
				want = append(want, i)
			}
		}
	}
	for n, i := range want {
		var m amqp091.Delivery
		select {
		case m = <-msgs:
		case <-time.After(60 * time.Second):
			t.Fatalf("delivery %d of %d did not come", n, total)
		}
		id := fmt.Sprint(i)
		if m.MessageId != id {
			got := m.MessageId
			var gotLevel any = "?"
			if k, err := parseIndex(got); err == nil {
				gotLevel = level[k]
			}
			t.Fatalf("delivery %d: message %s (level %v), want %s (level %d)", n, got, gotLevel, id, level[i])
		}
		if hi, _ := headerInt(m.Headers["i"]); hi != int64(i) || !bytes.Equal(m.Body, bodyFor("m"+id)) || m.DeliveryMode != 2 {
			t.Fatalf("message %s came back damaged: header i=%v, %d-byte body", id, m.Headers["i"], len(m.Body))
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-msgs:
		t.Fatalf("extra delivery %s after all %d", m.MessageId, total)
	default:
	}
}

func parseIndex(s string) (int, error) {
	var k int
	_, err := fmt.Sscan(strings.TrimSpace(s), &k)
	return k, err
}
