package ops

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/yardmq/yard/test/harness"
)

// kedaResult is what keda-rabbitmq (keda/main.go) prints: the metric KEDA's scaler feeds
// the Horizontal Pod Autoscaler and whether the trigger is active.
type kedaResult struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Active bool    `json:"active"`
}

// fillQueue declares queue in vhost (through AMQP) and publishes n confirmed messages.
func fillQueue(t *testing.T, y *harness.Yard, vhost, queue string, n int) {
	t.Helper()
	conn, err := amqp.Dial("amqp://guest:guest@" + y.AMQPAddr + "/" + url.PathEscape(vhost))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for range n {
		dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp.Publishing{Body: []byte("job")})
		if err != nil {
			t.Fatal(err)
		}
		if !dc.Wait() {
			t.Fatal("publish nacked")
		}
	}
}

// api calls yard's management API as guest.
func api(t *testing.T, y *harness.Yard, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+y.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestKEDAScaler runs KEDA's own RabbitMQ scaler (pkg/scalers, built by setup.sh with
// YARD_OPS_TOOLS=1) against yard: HTTP mode (queue length, publish rate, a queue name as a
// regular expression, a vhost other than /) and AMQP mode (QueueDeclarePassive).
func TestKEDAScaler(t *testing.T) {
	keda := tool(t, "KEDA_RABBITMQ")
	t.Parallel()
	y := harness.Start(t)
	if code, body := api(t, y, "PUT", "/api/vhosts/jobs", ""); code != http.StatusCreated {
		t.Fatalf("PUT vhost: %d %s", code, body)
	}
	if code, body := api(t, y, "PUT", "/api/permissions/jobs/guest", `{"configure":".*","write":".*","read":".*"}`); code != http.StatusCreated {
		t.Fatalf("PUT permissions: %d %s", code, body)
	}
	fillQueue(t, y, "/", "work", 7)
	fillQueue(t, y, "jobs", "resize", 3)
	fillQueue(t, y, "/", "work-2", 4)

	scale := func(wantErr string, args ...string) kedaResult {
		t.Helper()
		out, err := exec.Command(keda, args...).CombinedOutput()
		if wantErr != "" {
			if err == nil || !strings.Contains(string(out), wantErr) {
				t.Fatalf("keda-rabbitmq %s: %v, want an error with %q:\n%s", strings.Join(args, " "), err, wantErr, out)
			}
			return kedaResult{}
		}
		var r kedaResult
		if err != nil || json.Unmarshal(out, &r) != nil {
			t.Fatalf("keda-rabbitmq %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return r
	}
	httpHost := "http://guest:guest@" + y.HTTPAddr
	amqpHost := "amqp://guest:guest@" + y.AMQPAddr

	// Queue length over HTTP: 7 messages, target 5 per replica, active above 3.
	if r := scale("", "-host", httpHost+"/", "-queue", "work", "-protocol", "http", "-mode", "QueueLength", "-value", "5", "-activation", "3"); r.Value != 7 || !r.Active || r.Metric != "s0-rabbitmq-work" {
		t.Errorf("HTTP queue length: %+v", r)
	}
	if r := scale("", "-host", httpHost+"/", "-queue", "work", "-protocol", "http", "-mode", "QueueLength", "-activation", "10"); r.Value != 7 || r.Active {
		t.Errorf("HTTP queue length under the activation value: %+v", r)
	}
	// The vhost in the host's path, and as vhostName.
	if r := scale("", "-host", httpHost+"/jobs", "-queue", "resize", "-protocol", "http"); r.Value != 3 || !r.Active {
		t.Errorf("HTTP queue length in vhost jobs: %+v", r)
	}
	if r := scale("", "-host", httpHost+"/", "-vhost", "jobs", "-queue", "resize", "-protocol", "http"); r.Value != 3 {
		t.Errorf("HTTP queue length with vhostName: %+v", r)
	}
	scale("404 Not Found", "-host", httpHost+"/", "-queue", "missing", "-protocol", "http")
	scale("401 Unauthorized", "-host", "http://guest:wrong@"+y.HTTPAddr+"/", "-queue", "work", "-protocol", "http")

	// Publish rate: yard's rates are against a sample of the queue's counters at least 5 s
	// old; the first read takes one, so messages published after it show a rate above 0.
	if r := scale("", "-host", httpHost+"/", "-queue", "work", "-protocol", "http", "-mode", "MessageRate", "-value", "100"); r.Value != 0 || !r.Active {
		t.Errorf("publish rate with nothing published since the first sample: %+v (active: 7 messages are there)", r)
	}
	fillQueue(t, y, "/", "work", 10)
	if r := scale("", "-host", httpHost+"/", "-queue", "work", "-protocol", "http", "-mode", "MessageRate", "-value", "100"); r.Value <= 0 || !r.Active {
		t.Errorf("publish rate after 10 publishes: %+v", r)
	}

	// AMQP: the message count of queue.declare-ok (passive).
	if r := scale("", "-host", amqpHost+"/", "-queue", "work", "-protocol", "amqp", "-mode", "QueueLength"); r.Value != 17 || !r.Active {
		t.Errorf("AMQP queue length: %+v", r)
	}
	if r := scale("", "-host", amqpHost+"/jobs", "-queue", "resize", "-protocol", "amqp"); r.Value != 3 {
		t.Errorf("AMQP queue length in vhost jobs: %+v", r)
	}
	scale("NOT_FOUND", "-host", amqpHost+"/", "-queue", "missing", "-protocol", "amqp")

	// A queue name as a regular expression (HTTP only): RabbitMQ's paginated listing (KEDA
	// averages message counts in integers: 21/2 is 10).
	for op, want := range map[string]float64{"sum": 21, "max": 17, "avg": 10} {
		r := scale("", "-host", httpHost+"/", "-queue", "^work", "-protocol", "http", "-regex", "-operation", op)
		if r.Value != want {
			t.Errorf("regex %s: %+v, want %v", op, r, want)
		}
	}
}

// TestKEDAContract checks, without KEDA's code (which takes minutes to build), the HTTP and
// AMQP answers its RabbitMQ scaler reads: GET /api/queues/{vhost}/{queue} decoded as KEDA
// 2.21's queueInfo, the regex mode's paginated listing, and queue.declare-ok's message count
// for a passive declare.
func TestKEDAContract(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	fillQueue(t, y, "/", "work", 7)
	// KEDA's own types (pkg/scalers/rabbitmq_scaler.go).
	type queueInfo struct {
		Messages               int    `json:"messages"`
		MessagesReady          int    `json:"messages_ready"`
		MessagesUnacknowledged int    `json:"messages_unacknowledged"`
		Name                   string `json:"name"`
		MessageStat            struct {
			PublishDetail struct {
				Rate float64 `json:"rate"`
			} `json:"publish_details"`
			DeliverGetDetail struct {
				Rate float64 `json:"rate"`
			} `json:"deliver_get_details"`
		} `json:"message_stats"`
	}
	type regexQueueInfo struct {
		Queues     []queueInfo `json:"items"`
		TotalPages int         `json:"page_count"`
	}
	get := func(path string, v any) {
		t.Helper()
		code, body := api(t, y, "GET", path, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		dec := json.NewDecoder(strings.NewReader(body))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	var q queueInfo
	get("/api/queues/%2F/work", &q)
	if q.Name != "work" || q.Messages != 7 || q.MessagesReady != 7 || q.MessagesUnacknowledged != 0 {
		t.Errorf("queue: %+v", q)
	}
	fillQueue(t, y, "/", "work", 3)
	get("/api/queues/%2F/work", &q)
	if q.Messages != 10 || q.MessageStat.PublishDetail.Rate <= 0 {
		t.Errorf("queue after 3 more publishes: %+v", q)
	}
	var rq regexQueueInfo
	get(fmt.Sprintf("/api/queues/%%2F?page=1&use_regex=true&pagination=false&name=%s&page_size=%d", url.QueryEscape("^wo"), 100), &rq)
	if rq.TotalPages != 1 || len(rq.Queues) != 1 || rq.Queues[0].Messages != 10 {
		t.Errorf("regex listing: %+v", rq)
	}

	conn, err := amqp.Dial("amqp://guest:guest@" + y.AMQPAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// KEDA's call, flags and all.
	items, err := ch.QueueDeclarePassive("work", false, false, false, false, amqp.Table{})
	if err != nil || items.Messages != 10 {
		t.Fatalf("passive declare: %+v %v", items, err)
	}
}
