package admin_test

// What operators' tools read beyond the basic listings: one channel with its consumers,
// consumers' exclusive flag and arguments, the node's figures, and series of deleted topics
// and queues leaving /metrics.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDeletedTopicAndQueueLeaveMetrics(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.b.Addr("kafka").String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, topic := range []string{"gone", "kept"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	_, ch := tb.amqpChannel(t)
	for _, q := range []string{"qgone", "qkept"} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	m := scrape(t, tb)
	for _, series := range []string{`kafka_server_brokertopicmetrics_messages_in_total{topic="gone"}`,
		`kafka_topic_partitions{topic="gone"}`, `rabbitmq_queue_messages_ready{queue="qgone",vhost="/"}`} {
		if metricValue(m, series) < 0 {
			t.Fatalf("%s not in\n%s", series, m)
		}
	}
	if resp, err := adm.DeleteTopic(ctx, "gone"); err != nil || resp.Err != nil {
		t.Fatalf("delete topic: %v %v", err, resp.Err)
	}
	if _, err := ch.QueueDelete("qgone", false, false, false); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, tb)
	for _, l := range strings.Split(m, "\n") {
		if strings.Contains(l, `topic="gone"`) || strings.Contains(l, `queue="qgone"`) {
			t.Errorf("series of a deleted topic or queue: %s", l)
		}
	}
	for _, series := range []string{`kafka_server_brokertopicmetrics_messages_in_total{topic="kept"}`,
		`rabbitmq_queue_messages_ready{queue="qkept",vhost="/"}`} {
		if metricValue(m, series) < 0 {
			t.Errorf("%s not in the scrape after another was deleted", series)
		}
	}
	// Created again under the same name, the topic counts from zero (a new client: the
	// first one knows the old topic's ID).
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(tb.b.Addr("kafka").String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if err := cl2.ProduceSync(ctx, &kgo.Record{Topic: "gone", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := metricValue(scrape(t, tb), `kafka_server_brokertopicmetrics_messages_in_total{topic="gone"}`); n != 1 {
		t.Errorf("messages in of the topic created again: %v, want 1", n)
	}
}

func TestChannelAndConsumerDetails(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	conn, ch := tb.amqpChannel(t)
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("q", "excl", false, true, false, false, amqp.Table{"x-priority": int32(7), "x-note": "hi"}); err != nil {
		t.Fatal(err)
	}
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.QueueDeclare("q2", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch2.Consume("q2", "plain", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	type consumer struct {
		ConsumerTag    string         `json:"consumer_tag"`
		Exclusive      bool           `json:"exclusive"`
		AckRequired    bool           `json:"ack_required"`
		Arguments      map[string]any `json:"arguments"`
		ChannelDetails struct {
			Name string `json:"name"`
		} `json:"channel_details"`
	}
	var cs []consumer
	tb.get(t, "/api/consumers", &cs)
	byTag := map[string]consumer{}
	for _, c := range cs {
		byTag[c.ConsumerTag] = c
	}
	excl, plain := byTag["excl"], byTag["plain"]
	if len(cs) != 2 || !excl.Exclusive || !excl.AckRequired || excl.Arguments["x-priority"] != float64(7) || excl.Arguments["x-note"] != "hi" ||
		plain.Exclusive || plain.AckRequired || plain.Arguments == nil || len(plain.Arguments) != 0 {
		t.Fatalf("consumers: %+v", cs)
	}

	var one struct {
		Name              string     `json:"name"`
		Number            int        `json:"number"`
		ConsumerCount     int        `json:"consumer_count"`
		ConsumerDetails   []consumer `json:"consumer_details"`
		ConnectionDetails struct {
			Name string `json:"name"`
		} `json:"connection_details"`
	}
	tb.get(t, "/api/channels/"+url.PathEscape(excl.ChannelDetails.Name), &one)
	if one.Name != excl.ChannelDetails.Name || one.Number != 1 || one.ConsumerCount != 1 || len(one.ConsumerDetails) != 1 ||
		one.ConsumerDetails[0].ConsumerTag != "excl" || !one.ConsumerDetails[0].Exclusive {
		t.Fatalf("channel: %+v", one)
	}
	var listed []map[string]any
	tb.get(t, "/api/channels", &listed)
	if len(listed) != 2 || listed[0]["consumer_details"] != nil {
		t.Fatalf("channel listing (no consumer_details, as RabbitMQ's): %+v", listed)
	}
	var ofConn []map[string]any
	tb.get(t, "/api/connections/"+url.PathEscape(one.ConnectionDetails.Name)+"/channels", &ofConn)
	if len(ofConn) != 2 {
		t.Fatalf("channels of the connection: %+v", ofConn)
	}
	// Bytes in and out of the connection, as the kernel counts them (Linux).
	var conns []struct {
		RecvOct        *uint64 `json:"recv_oct"`
		SendOct        *uint64 `json:"send_oct"`
		RecvOctDetails *struct {
			Rate *float64 `json:"rate"`
		} `json:"recv_oct_details"`
		SendOctDetails *struct {
			Rate *float64 `json:"rate"`
		} `json:"send_oct_details"`
	}
	tb.get(t, "/api/connections", &conns)
	if runtime.GOOS == "linux" {
		if len(conns) != 1 || conns[0].RecvOct == nil || *conns[0].RecvOct == 0 || conns[0].SendOct == nil || *conns[0].SendOct == 0 ||
			conns[0].RecvOctDetails == nil || conns[0].RecvOctDetails.Rate == nil || conns[0].SendOctDetails == nil || conns[0].SendOctDetails.Rate == nil {
			t.Errorf("connection's bytes: %s", mustJSON(conns))
		}
	}
	for _, path := range []string{"/api/channels/" + url.PathEscape("1.2.3.4:5 -> 6.7.8.9:10 (1)"), "/api/connections/nope/channels", "/api/consumers/nope"} {
		status, body := tb.do(t, "GET", path, "")
		if status != http.StatusNotFound || string(body) != `{"error":"Object Not Found","reason":"Not Found"}`+"\n" {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
}

func TestNodes(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	type node struct {
		Name          string   `json:"name"`
		Running       bool     `json:"running"`
		MemUsed       uint64   `json:"mem_used"`
		MemLimit      uint64   `json:"mem_limit"`
		MemAlarm      *bool    `json:"mem_alarm"`
		DiskFree      uint64   `json:"disk_free"`
		DiskFreeLimit uint64   `json:"disk_free_limit"`
		DiskFreeAlarm *bool    `json:"disk_free_alarm"`
		FDUsed        int      `json:"fd_used"`
		FDTotal       int      `json:"fd_total"`
		SocketsUsed   int      `json:"sockets_used"`
		SocketsTotal  int      `json:"sockets_total"`
		ProcUsed      int      `json:"proc_used"`
		ProcTotal     int      `json:"proc_total"`
		Partitions    []string `json:"partitions"`
	}
	var nodes []node
	tb.get(t, "/api/nodes", &nodes)
	if len(nodes) != 1 {
		t.Fatalf("nodes: %+v", nodes)
	}
	n := nodes[0]
	// Three listeners at least are open sockets; the memory in use is below the watermark
	// on a test machine, and the disk is not below 50 MB free.
	if !n.Running || n.MemUsed == 0 || n.MemLimit <= n.MemUsed || n.MemAlarm == nil || *n.MemAlarm ||
		n.DiskFree == 0 || n.DiskFreeLimit == 0 || n.DiskFreeAlarm == nil || *n.DiskFreeAlarm ||
		n.FDUsed < 3 || n.FDTotal < n.FDUsed || n.SocketsUsed < 3 || n.SocketsUsed > n.FDUsed || n.SocketsTotal == 0 ||
		n.ProcUsed == 0 || n.ProcTotal <= n.ProcUsed || n.Partitions == nil || len(n.Partitions) != 0 {
		t.Fatalf("node: %+v", n)
	}
	var overview struct {
		Node string `json:"node"`
	}
	tb.get(t, "/api/overview", &overview)
	for _, name := range []string{overview.Node, "rabbit@localhost", "rabbit@" + strings.SplitN(overview.Node, "@", 2)[1]} {
		var one node
		tb.get(t, "/api/nodes/"+url.PathEscape(name), &one)
		if one.Name != overview.Node || one.FDUsed == 0 {
			t.Fatalf("node %s: %+v", name, one)
		}
	}
	status, body := tb.do(t, "GET", "/api/nodes/rabbit@elsewhere", "")
	if status != http.StatusNotFound || !json.Valid(body) || !strings.Contains(string(body), `"error":"Object Not Found"`) {
		t.Fatalf("unknown node: %d %s", status, body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestQueuesPaginated: /api/queues with ?page (what KEDA's scaler asks with useRegex):
// RabbitMQ's page object, filtered by name as a regular expression or a substring.
func TestQueuesPaginated(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	for _, q := range []string{"work-1", "work-2", "work-3", "other"} {
		if status, body := tb.do(t, "PUT", "/api/queues/%2F/"+q, `{"durable":false}`); status != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", q, status, body)
		}
	}
	type pageJSON struct {
		FilteredCount int `json:"filtered_count"`
		ItemCount     int `json:"item_count"`
		Items         []struct {
			Name string `json:"name"`
		} `json:"items"`
		Page       int `json:"page"`
		PageCount  int `json:"page_count"`
		PageSize   int `json:"page_size"`
		TotalCount int `json:"total_count"`
	}
	names := func(p pageJSON) string {
		var n []string
		for _, i := range p.Items {
			n = append(n, i.Name)
		}
		return strings.Join(n, ",")
	}
	var p pageJSON
	tb.get(t, "/api/queues/%2F?page=1&use_regex=true&pagination=false&name="+url.QueryEscape("^work-[12]$")+"&page_size=100", &p)
	if names(p) != "work-1,work-2" || p.FilteredCount != 2 || p.ItemCount != 2 || p.PageCount != 1 || p.TotalCount != 4 || p.PageSize != 100 {
		t.Fatalf("regex page: %+v", p)
	}
	tb.get(t, "/api/queues?page=2&page_size=2&name=work", &p)
	if names(p) != "work-3" || p.FilteredCount != 3 || p.PageCount != 2 || p.Page != 2 {
		t.Fatalf("second page of a substring filter: %+v", p)
	}
	var plain []map[string]any
	tb.get(t, "/api/queues", &plain)
	if len(plain) != 4 {
		t.Fatalf("unpaged: %+v", plain)
	}
	for _, q := range []string{"page=0", "page=1&page_size=501", "page=1&use_regex=true&name=("} {
		if status, body := tb.do(t, "GET", "/api/queues?"+q, ""); status != http.StatusBadRequest || !strings.Contains(string(body), `"error":"bad_request"`) {
			t.Errorf("?%s: %d %s", q, status, body)
		}
	}
}

// TestPoliciesRefused: yard has no policies; the listings are empty and setting one is a
// 400 that says what to use instead.
func TestPoliciesRefused(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	for _, kind := range []string{"policies", "operator-policies"} {
		var list []any
		tb.get(t, "/api/"+kind, &list)
		tb.get(t, "/api/"+kind+"/%2F", &list)
		if list == nil || len(list) != 0 {
			t.Fatalf("%s: %v", kind, list)
		}
		status, body := tb.do(t, "PUT", "/api/"+kind+"/%2F/ha", `{"pattern":".*","definition":{"max-length":10}}`)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"error":"bad_request"`) || !strings.Contains(string(body), "x-max-length") {
			t.Errorf("PUT %s: %d %s", kind, status, body)
		}
		for _, path := range []string{"/api/" + kind + "/%2F/ha", "/api/" + kind + "/nope"} {
			if status, body := tb.do(t, "GET", path, ""); status != http.StatusNotFound {
				t.Errorf("GET %s: %d %s", path, status, body)
			}
		}
	}
}

// TestMethodNotAllowed: a path served for other methods answers 405 with Allow, in
// RabbitMQ's error shape; an unknown path 404.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	for path, allow := range map[string]string{"/api/overview": "GET", "/api/queues/%2F/q": "GET, PUT, DELETE", "/api/definitions": "GET, POST"} {
		req, err := http.NewRequest("PATCH", tb.http+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error, Reason string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != allow || err != nil || e.Error != "Method Not Allowed" || e.Reason == "" {
			t.Errorf("PATCH %s: %d Allow %q %+v %v", path, resp.StatusCode, resp.Header.Get("Allow"), e, err)
		}
	}
	if status, body := tb.do(t, "GET", "/api/nothing/here", ""); status != http.StatusNotFound || !strings.Contains(string(body), `"error":"Object Not Found"`) {
		t.Errorf("unknown path: %d %s", status, body)
	}
}
