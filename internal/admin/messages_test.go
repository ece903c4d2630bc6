package admin_test

// POST /api/exchanges/{vhost}/{name}/publish and POST /api/queues/{vhost}/{name}/get
// (messages.go) against a real broker: what they route and take is what AMQP clients see.

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/internal/auth"
)

func permission(configure, write, read string) auth.Permission {
	return auth.Permission{Configure: configure, Write: write, Read: read}
}

// doAs sends a request with these credentials and returns the status and body.
func (tb *testBroker) doAs(t *testing.T, user, pass, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tb.http+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// publish posts a publish as guest and returns routed; any status but 200 fails the test.
func (tb *testBroker) publish(t *testing.T, exchange, body string) bool {
	t.Helper()
	status, out := tb.do(t, "POST", "/api/exchanges/%2F/"+exchange+"/publish", body)
	var res struct {
		Routed *bool `json:"routed"`
	}
	if status != http.StatusOK || json.Unmarshal(out, &res) != nil || res.Routed == nil {
		t.Fatalf("publish to %s: %d %s", exchange, status, out)
	}
	return *res.Routed
}

type gotMsg struct {
	PayloadBytes    int             `json:"payload_bytes"`
	Redelivered     bool            `json:"redelivered"`
	Exchange        string          `json:"exchange"`
	RoutingKey      string          `json:"routing_key"`
	MessageCount    int             `json:"message_count"`
	Properties      json.RawMessage `json:"properties"`
	Payload         string          `json:"payload"`
	PayloadEncoding string          `json:"payload_encoding"`
}

// getMsgs posts a get as guest.
func (tb *testBroker) getMsgs(t *testing.T, queue, body string) []gotMsg {
	t.Helper()
	status, out := tb.do(t, "POST", "/api/queues/%2F/"+queue+"/get", body)
	var msgs []gotMsg
	if status != http.StatusOK || json.Unmarshal(out, &msgs) != nil || msgs == nil {
		t.Fatalf("get from %s: %d %s", queue, status, out)
	}
	return msgs
}

func payloads(ms []gotMsg) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Payload)
	}
	return strings.Join(s, ",")
}

func TestPublishReachesAMQPConsumers(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	_, ch := tb.amqpChannel(t)
	for _, q := range []string{"plain", "topicq", "ccq", "hq"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.ExchangeDeclare("ae", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("aeq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("aeq", "", "ae", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("events", "topic", true, false, false, false, amqp.Table{"alternate-exchange": "ae"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("topicq", "order.*", "events", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("ccq", "audit", "events", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("hx", "headers", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("hq", "", "hx", false, amqp.Table{"x-match": "all", "kind": "big"}); err != nil {
		t.Fatal(err)
	}

	// Every property RabbitMQ's to_basic_properties knows, through the default exchange.
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if !tb.publish(t, "amq.default", `{"routing_key":"plain","payload":"hello","payload_encoding":"string",
		"properties":{"content_type":"text/plain","content_encoding":"utf-8","delivery_mode":2,"priority":3,
		"correlation_id":"c1","reply_to":"r1","expiration":"60000","message_id":"m1","timestamp":`+
		jsonInt(ts.Unix())+`,"type":"t1","user_id":"guest","app_id":"a1",
		"headers":{"s":"x","n":42,"f":1.5,"b":true,"arr":[1,"two"],"tbl":{"k":"v"}}}}`) {
		t.Fatal("not routed to an existing queue")
	}
	d, ok, err := ch.Get("plain", true)
	if err != nil || !ok {
		t.Fatalf("AMQP get: %v %v", ok, err)
	}
	if string(d.Body) != "hello" || d.ContentType != "text/plain" || d.ContentEncoding != "utf-8" ||
		d.DeliveryMode != 2 || d.Priority != 3 || d.CorrelationId != "c1" || d.ReplyTo != "r1" ||
		d.Expiration != "60000" || d.MessageId != "m1" || !d.Timestamp.Equal(ts) || d.Type != "t1" ||
		d.UserId != "guest" || d.AppId != "a1" || d.Exchange != "" || d.RoutingKey != "plain" {
		t.Fatalf("delivery: %+v", d)
	}
	h := d.Headers
	if h["s"] != "x" || h["n"] != int64(42) || h["f"] != 1.5 || h["b"] != true ||
		len(h["arr"].([]any)) != 2 || h["tbl"].(amqp.Table)["k"] != "v" {
		t.Fatalf("headers: %#v", h)
	}

	// A topic exchange with CC and BCC: both queues get it, BCC is not shown; a base64 body.
	body := []byte{0, 1, 0xff, 'z'}
	if !tb.publish(t, "events", `{"routing_key":"order.new","payload":"`+base64.StdEncoding.EncodeToString(body)+
		`","payload_encoding":"base64","properties":{"headers":{"BCC":["audit"]}}}`) {
		t.Fatal("not routed")
	}
	for _, q := range []string{"topicq", "ccq"} {
		d, ok, err := ch.Get(q, true)
		if err != nil || !ok || string(d.Body) != string(body) || d.Exchange != "events" || d.RoutingKey != "order.new" {
			t.Fatalf("%s: %v %v %+v", q, ok, err, d)
		}
		if _, ok := d.Headers["BCC"]; ok {
			t.Fatalf("BCC header delivered: %v", d.Headers)
		}
	}
	// No binding matches: the alternate exchange takes it, and that counts as routed.
	if !tb.publish(t, "events", `{"routing_key":"nothing","payload":"to ae","payload_encoding":"string","properties":{}}`) {
		t.Fatal("not routed through the alternate exchange")
	}
	if d, ok, _ := ch.Get("aeq", true); !ok || string(d.Body) != "to ae" {
		t.Fatalf("alternate exchange: %v %s", ok, d.Body)
	}
	// Headers exchange: matched by the JSON headers.
	if tb.publish(t, "hx", `{"routing_key":"","payload":"small","payload_encoding":"string","properties":{"headers":{"kind":"small"}}}`) {
		t.Fatal("a non-matching headers publish was routed")
	}
	if !tb.publish(t, "hx", `{"routing_key":"","payload":"big","payload_encoding":"string","properties":{"headers":{"kind":"big"}}}`) {
		t.Fatal("a matching headers publish was not routed")
	}
	// Unroutable (no queue of that name): routed false, as RabbitMQ's mandatory publish.
	if tb.publish(t, "amq.default", `{"routing_key":"nosuchqueue","payload":"x","payload_encoding":"string","properties":{}}`) {
		t.Fatal("routed to a queue that does not exist")
	}

	// A stream queue appends it as a record that AMQP stream consumers (and Kafka's) read.
	if _, err := ch.QueueDeclare("events-stream", true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		t.Fatal(err)
	}
	if !tb.publish(t, "amq.default", `{"routing_key":"events-stream","payload":"in the log","payload_encoding":"string","properties":{"message_id":"s1"}}`) {
		t.Fatal("not routed to the stream")
	}
	_, sch := tb.amqpChannel(t)
	if err := sch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	recs, err := sch.Consume("events-stream", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-recs:
		if string(d.Body) != "in the log" || d.MessageId != "s1" {
			t.Fatalf("stream consumer got %s %+v", d.Body, d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream consumer got nothing")
	}

	// A live consumer gets what is published over HTTP.
	deliveries, err := ch.Consume("hq", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-deliveries:
		if string(d.Body) != "big" || d.Headers["kind"] != "big" {
			t.Fatalf("consumer got %s %v", d.Body, d.Headers)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer got nothing")
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestGetAckModes(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	_, ch := tb.amqpChannel(t)
	if _, err := ch.QueueDeclare("dlq", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", true, false, false, false, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}); err != nil {
		t.Fatal(err)
	}
	pub := func(payloads ...string) {
		t.Helper()
		for _, p := range payloads {
			if !tb.publish(t, "amq.default", `{"routing_key":"q","payload":"`+p+`","payload_encoding":"string","properties":{"delivery_mode":2}}`) {
				t.Fatal("not routed")
			}
		}
	}
	pub("m1", "m2", "m3")

	// ack_requeue_true: taken and returned, marked redelivered; message_count is what is left
	// ready after each (count as a string, as rabbitmqadmin sends it).
	ms := tb.getMsgs(t, "q", `{"count":"2","ackmode":"ack_requeue_true","encoding":"auto"}`)
	if payloads(ms) != "m1,m2" || ms[0].MessageCount != 2 || ms[1].MessageCount != 1 || ms[0].Redelivered ||
		ms[0].Exchange != "" || ms[0].RoutingKey != "q" || ms[0].PayloadBytes != 2 || ms[0].PayloadEncoding != "string" {
		t.Fatalf("ack_requeue_true: %+v", ms)
	}
	if string(ms[0].Properties) != `{"delivery_mode":2}` {
		t.Fatalf("properties: %s", ms[0].Properties)
	}
	// reject_requeue_true: all three back, the first two now redelivered.
	ms = tb.getMsgs(t, "q", `{"count":5,"ackmode":"reject_requeue_true","encoding":"auto"}`)
	if payloads(ms) != "m1,m2,m3" || !ms[0].Redelivered || !ms[1].Redelivered || ms[2].Redelivered {
		t.Fatalf("reject_requeue_true: %+v", ms)
	}
	// reject_requeue_false: dropped, so dead-lettered (reason rejected).
	ms = tb.getMsgs(t, "q", `{"count":1,"ackmode":"reject_requeue_false","encoding":"auto"}`)
	if payloads(ms) != "m1" {
		t.Fatalf("reject_requeue_false: %+v", ms)
	}
	d, ok, err := ch.Get("dlq", true)
	if err != nil || !ok || string(d.Body) != "m1" || d.Headers["x-first-death-reason"] != "rejected" {
		t.Fatalf("dead-lettered: %v %v %s %v", ok, err, d.Body, d.Headers)
	}
	// ack_requeue_false: gone; truncate cuts the payload, not payload_bytes.
	ms = tb.getMsgs(t, "q", `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto","truncate":1}`)
	if len(ms) != 1 || ms[0].Payload != "m" || ms[0].PayloadBytes != 2 || ms[0].MessageCount != 1 {
		t.Fatalf("ack_requeue_false: %+v", ms)
	}
	// encoding base64 forces base64; a payload that is not UTF-8 is base64 under auto too.
	ms = tb.getMsgs(t, "q", `{"count":1,"ackmode":"ack_requeue_false","encoding":"base64"}`)
	if len(ms) != 1 || ms[0].Payload != base64.StdEncoding.EncodeToString([]byte("m3")) || ms[0].PayloadEncoding != "base64" {
		t.Fatalf("base64: %+v", ms)
	}
	if !tb.publish(t, "amq.default", `{"routing_key":"q","payload":"/w==","payload_encoding":"base64","properties":{}}`) {
		t.Fatal("not routed")
	}
	ms = tb.getMsgs(t, "q", `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`)
	if len(ms) != 1 || ms[0].Payload != "/w==" || ms[0].PayloadEncoding != "base64" || string(ms[0].Properties) != "[]" {
		t.Fatalf("binary under auto: %+v %s", ms, ms[0].Properties)
	}
	if ms := tb.getMsgs(t, "q", `{"count":5,"ackmode":"ack_requeue_false","encoding":"auto"}`); len(ms) != 0 {
		t.Fatalf("empty queue gave %+v", ms)
	}

	// A quorum queue (on one node) answers gets too; a returned message is counted.
	if _, err := ch.QueueDeclare("qq", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if !tb.publish(t, "amq.default", `{"routing_key":"qq","payload":"quorum","payload_encoding":"string","properties":{}}`) {
		t.Fatal("not routed")
	}
	tb.getMsgs(t, "qq", `{"count":1,"ackmode":"reject_requeue_true","encoding":"auto"}`)
	ms = tb.getMsgs(t, "qq", `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`)
	if len(ms) != 1 || ms[0].Payload != "quorum" || !ms[0].Redelivered || string(ms[0].Properties) != `{"headers":{"x-delivery-count":1}}` {
		t.Fatalf("quorum queue: %+v %s", ms, ms[0].Properties)
	}

	// What a get answers can be published again as it is (RabbitMQ's publish_test).
	if !tb.publish(t, "amq.default", `{"routing_key":"q","payload":"p","payload_encoding":"string","properties":{"headers":{"x-forwarding":[{"uri":"amqp://h"}]},"delivery_mode":2}}`) {
		t.Fatal("not routed")
	}
	status, out := tb.do(t, "POST", "/api/queues/%2F/q/get", `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`)
	var raw []map[string]any
	if status != http.StatusOK || json.Unmarshal(out, &raw) != nil || len(raw) != 1 {
		t.Fatalf("get: %d %s", status, out)
	}
	raw[0]["routing_key"] = "q"
	again, _ := json.Marshal(raw[0])
	if !tb.publish(t, "amq.default", string(again)) {
		t.Fatal("republished message not routed")
	}
	ms = tb.getMsgs(t, "q", `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`)
	if len(ms) != 1 || ms[0].Payload != "p" || string(ms[0].Properties) != `{"delivery_mode":2,"headers":{"x-forwarding":[{"uri":"amqp://h"}]}}` {
		t.Fatalf("republished: %+v %s", ms, ms[0].Properties)
	}
}

func TestPublishAndGetRefused(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	_, ch := tb.amqpChannel(t)
	if _, err := ch.QueueDeclare("q", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("s", true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("internal", "fanout", true, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	users := tb.b.Users()
	pw := "pw"
	for _, u := range []struct{ name, tags string }{{"nobody", "management"}, {"ro", "management"}, {"app", ""}} {
		if _, err := users.PutUser(u.name, &pw, strings.Fields(u.tags)); err != nil {
			t.Fatal(err)
		}
	}
	if err := users.SetPermission("ro", "/", permission("", "^$", ".*")); err != nil {
		t.Fatal(err)
	}
	if err := users.SetPermission("app", "/", permission(".*", ".*", ".*")); err != nil {
		t.Fatal(err)
	}
	msg := func(props string) string {
		return `{"routing_key":"q","payload":"x","payload_encoding":"string","properties":` + props + `}`
	}
	get := `{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}`
	for _, c := range []struct {
		user, method, path, body string
		status                   int
		contains                 string
	}{
		{"guest", "POST", "/api/exchanges/%2F/nosuch/publish", msg(`{}`), 404, `"Object Not Found"`},
		{"guest", "POST", "/api/exchanges/nosuchvhost/amq.default/publish", msg(`{}`), 404, `"Object Not Found"`},
		{"guest", "POST", "/api/queues/%2F/nosuch/get", get, 404, `"Object Not Found"`},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", `{nope`, 400, `"bad_request"`},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", `{"routing_key":"q","payload":"x"}`, 400, `[{key_missing,properties},{key_missing,payload_encoding}]`},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", `{"routing_key":"q","payload":["x"],"payload_encoding":"string","properties":{}}`, 400, "payload_not_string"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", `{"routing_key":"q","payload":"x","payload_encoding":"base99","properties":{}}`, 400, "unsupported_encoding"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", `{"routing_key":"q","payload":"flibble","payload_encoding":"base64","properties":{}}`, 400, "not_base64"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"priority":"really high"}`), 400, "{not_int,priority}"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"timestamp":"recently"}`), 400, "{not_int,timestamp}"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"expiration":1234}`), 400, "{not_string,expiration}"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"headers":{"h":null}}`), 400, "null_not_allowed"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"user_id":"foo"}`), 400, "406 PRECONDITION_FAILED - user_id property set to 'foo' but authenticated user was 'guest'"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"expiration":"-1"}`), 400, "406 PRECONDITION_FAILED - invalid expiration '-1'"},
		{"guest", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{"headers":{"CC":"q"}}`), 400, "406 PRECONDITION_FAILED - invalid message"},
		{"guest", "POST", "/api/exchanges/%2F/internal/publish", msg(`{}`), 401, "ACCESS_REFUSED - cannot publish to internal exchange 'internal'"},
		{"guest", "POST", "/api/queues/%2F/q/get", `{"count":1,"ackmode":"ack_maybe","encoding":"auto"}`, 400, "Invalid ackmode value: ack_maybe"},
		{"guest", "POST", "/api/queues/%2F/q/get", `{"count":1,"ackmode":"ack_requeue_false","encoding":"hex"}`, 400, "Unsupported encoding"},
		{"guest", "POST", "/api/queues/%2F/q/get", `{"count":"many","ackmode":"ack_requeue_false","encoding":"auto"}`, 400, "not_integer"},
		{"guest", "POST", "/api/queues/%2F/q/get", `{"ackmode":"ack_requeue_false","encoding":"auto"}`, 400, "{key_missing,count}"},
		{"guest", "POST", "/api/queues/%2F/s/get", get, 400, "540 NOT_IMPLEMENTED - basic.get is not supported by stream queue 's'"},
		{"guest", "GET", "/api/queues/%2F/q/get", "", 405, "Method Not Allowed"},
		// A management user without permissions in the vhost does not see it (RabbitMQ's 404).
		{"nobody", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{}`), 404, "Not Found"},
		{"nobody", "POST", "/api/queues/%2F/q/get", get, 404, "Not Found"},
		// With permissions, but not these: the channel's ACCESS_REFUSED as 401.
		{"ro", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{}`), 401, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'ro'"},
		{"ro", "POST", "/api/queues/%2F/q/get", get, 200, "[]"},
		// Not a management user at all.
		{"app", "POST", "/api/exchanges/%2F/amq.default/publish", msg(`{}`), 401, "Not management user"},
	} {
		pass := "guest"
		if c.user != "guest" {
			pass = pw
		}
		status, out := tb.doAs(t, c.user, pass, c.method, c.path, c.body)
		if status != c.status || !strings.Contains(out, c.contains) {
			t.Errorf("%s %s %s as %s: %d %s, want %d with %q", c.method, c.path, c.body, c.user, status, out, c.status, c.contains)
		}
	}
	if err := users.SetPermission("ro", "/", permission("", ".*", "^$")); err != nil {
		t.Fatal(err)
	}
	if status, out := tb.doAs(t, "ro", pw, "POST", "/api/queues/%2F/q/get", get); status != 401 || !strings.Contains(out, "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'ro'") {
		t.Errorf("get without read permission: %d %s", status, out)
	}
	// Nothing refused was delivered.
	if ms := tb.getMsgs(t, "q", `{"count":10,"ackmode":"ack_requeue_false","encoding":"auto"}`); len(ms) != 0 {
		t.Fatalf("refused publishes delivered: %+v", ms)
	}
}
