package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/broker"
)

// testBroker is an in-process broker with every front end on 127.0.0.1:0.
type testBroker struct {
	b    *broker.Broker
	http string
}

// amqpChannel opens a connection as guest to tb's AMQP listener, closed when the test ends,
// and a channel on it.
func (tb *testBroker) amqpChannel(t *testing.T) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	conn, err := amqp.Dial("amqp://guest:guest@" + tb.b.Addr("amqp").String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return conn, ch
}

func startBroker(t *testing.T) *testBroker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaListen = "127.0.0.1:0"
	cfg.AMQPListen = "127.0.0.1:0"
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.SyncPolicy = 0
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown(context.Background()) })
	return &testBroker{b: b, http: "http://" + b.Addr("http").String()}
}

// do sends a request as guest and returns the status and body.
func (tb *testBroker) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, tb.http+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (tb *testBroker) get(t *testing.T, path string, v any) {
	t.Helper()
	status, body := tb.do(t, "GET", path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func TestAMQPResources(t *testing.T) {
	tb := startBroker(t)
	conn, ch := tb.amqpChannel(t)
	if _, err := ch.QueueDeclare("q1", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("ex", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("q1", "a.#", "ex", false, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ch.Publish("ex", "a.b", false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("q1", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-deliveries // one unacknowledged; prefetch 1 keeps the other two ready

	// Without credentials: RabbitMQ's 401.
	resp, err := http.Get(tb.http + "/api/overview")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	var ov struct {
		ObjectTotals map[string]int `json:"object_totals"`
		QueueTotals  struct {
			Messages, MessagesReady, MessagesUnacknowledged int64
		} `json:"queue_totals"`
	}
	tb.get(t, "/api/overview", &ov)
	if ov.ObjectTotals["queues"] != 1 || ov.ObjectTotals["connections"] != 1 || ov.QueueTotals.Messages != 3 {
		t.Fatalf("overview: %+v", ov)
	}

	var q struct {
		Name                   string `json:"name"`
		VHost                  string `json:"vhost"`
		Durable                bool   `json:"durable"`
		Messages               int    `json:"messages"`
		MessagesReady          int    `json:"messages_ready"`
		MessagesUnacknowledged int    `json:"messages_unacknowledged"`
		Consumers              int    `json:"consumers"`
		MessageStats           struct {
			Publish        int64 `json:"publish"`
			PublishDetails struct {
				Rate *float64 `json:"rate"`
			} `json:"publish_details"`
			DeliverGet int64 `json:"deliver_get"`
		} `json:"message_stats"`
	}
	tb.get(t, "/api/queues/%2F/q1", &q)
	if q.MessageStats.Publish != 3 || q.MessageStats.DeliverGet != 1 || q.MessageStats.PublishDetails.Rate == nil {
		t.Fatalf("message_stats: %+v", q.MessageStats)
	}
	if q.Name != "q1" || q.VHost != "/" || !q.Durable || q.Messages != 3 || q.MessagesReady != 2 || q.MessagesUnacknowledged != 1 || q.Consumers != 1 {
		t.Fatalf("queue: %+v", q)
	}
	var qs []map[string]any
	tb.get(t, "/api/queues", &qs)
	if len(qs) != 1 {
		t.Fatalf("queues: %v", qs)
	}

	// Declare, redeclare, redeclare inequivalently, purge, delete.
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/api/queues/%2F/q2", `{"durable":true,"arguments":{"x-max-length":10}}`, 201},
		{"PUT", "/api/queues/%2F/q2", `{"durable":true,"arguments":{"x-max-length":10}}`, 204},
		{"PUT", "/api/queues/%2F/q2", `{"durable":false}`, 400},
		{"PUT", "/api/queues/nosuch/q2", `{}`, 404},
		{"DELETE", "/api/queues/%2F/q2/contents", "", 204},
		{"DELETE", "/api/queues/%2F/q2", "", 204},
		{"GET", "/api/queues/%2F/q2", "", 404},
		{"PUT", "/api/exchanges/%2F/ex2", `{"type":"fanout"}`, 201},
		{"PUT", "/api/exchanges/%2F/ex2", `{"type":"direct"}`, 400},
		{"GET", "/api/exchanges/%2F/amq.default", "", 200},
		{"DELETE", "/api/exchanges/%2F/ex2", "", 204},
		{"GET", "/api/exchanges/%2F/ex2", "", 404},
		{"GET", "/api/aliveness-test/%2F", "", 200},
		{"GET", "/api/nosuch", "", 404},
	} {
		status, body := tb.do(t, c.method, c.path, c.body)
		if status != c.status {
			t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, status, body, c.status)
		}
		if status >= 400 {
			var e struct{ Error, Reason string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Reason == "" {
				t.Fatalf("%s %s: error body %s", c.method, c.path, body)
			}
		}
	}

	var bs []struct {
		Source          string `json:"source"`
		Destination     string `json:"destination"`
		DestinationType string `json:"destination_type"`
		RoutingKey      string `json:"routing_key"`
	}
	tb.get(t, "/api/bindings/%2F", &bs)
	found := false
	for _, b := range bs {
		found = found || (b.Source == "ex" && b.Destination == "q1" && b.DestinationType == "queue" && b.RoutingKey == "a.#")
	}
	if !found {
		t.Fatalf("bindings: %+v", bs)
	}

	metrics := scrape(t, tb)
	for _, want := range []string{
		`rabbitmq_queue_messages_ready{queue="q1",vhost="/"} 2`,
		`rabbitmq_queue_messages_unacked{queue="q1",vhost="/"} 1`,
		`rabbitmq_queue_consumers{queue="q1",vhost="/"} 1`,
		`yard_connections{protocol="amqp"} 1`,
		`rabbitmq_queue_messages_published_total{queue="q1",vhost="/"} 3`,
		`rabbitmq_queue_messages_delivered_total{queue="q1",vhost="/"} 1`,
		"rabbitmq_alarms_memory_used_watermark 0",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Closing the connection through the API tells the client.
	var conns []struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
		User     string `json:"user"`
	}
	tb.get(t, "/api/connections", &conns)
	if len(conns) != 1 || conns[0].Protocol != "AMQP 0-9-1" || conns[0].User != "guest" {
		t.Fatalf("connections: %+v", conns)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	req, _ := http.NewRequest("DELETE", tb.http+"/api/connections/"+urlPathEscape(conns[0].Name), nil)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("X-Reason", "maintenance")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("close connection: %d", resp.StatusCode)
	}
	select {
	case e := <-closed:
		if e == nil || !strings.Contains(e.Reason, "maintenance") {
			t.Fatalf("close: %v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connection not closed")
	}
}

func urlPathEscape(s string) string {
	r := strings.NewReplacer(" ", "%20", ">", "%3E")
	return r.Replace(s)
}

func scrape(t *testing.T, tb *testBroker) string {
	t.Helper()
	resp, err := http.Get(tb.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestKafkaResources(t *testing.T) {
	tb := startBroker(t)
	ctx, cl, adm := kafkaTopicT(t, tb)
	for i := range 5 {
		r := &kgo.Record{Topic: "t", Partition: 0, Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}

	var topic struct {
		Name       string `json:"name"`
		Partitions []struct {
			Partition   int32 `json:"partition"`
			StartOffset int64 `json:"start_offset"`
			EndOffset   int64 `json:"end_offset"`
		} `json:"partitions"`
		Configs map[string]string `json:"configs"`
	}
	tb.get(t, "/api/kafka/topics/t", &topic)
	if topic.Name != "t" || len(topic.Partitions) != 2 || topic.Partitions[0].EndOffset != 5 || topic.Configs["cleanup.policy"] == "" {
		t.Fatalf("topic: %+v", topic)
	}
	var g struct {
		Name       string `json:"name"`
		Lag        int64  `json:"lag"`
		Partitions []struct {
			Topic           string `json:"topic"`
			CommittedOffset int64  `json:"committed_offset"`
			LogEndOffset    int64  `json:"log_end_offset"`
			Lag             int64  `json:"lag"`
		} `json:"partitions"`
	}
	tb.get(t, "/api/kafka/groups/g", &g)
	if g.Lag != 3 || len(g.Partitions) != 1 || g.Partitions[0].CommittedOffset != 2 || g.Partitions[0].LogEndOffset != 5 {
		t.Fatalf("group: %+v", g)
	}
	if status, _ := tb.do(t, "GET", "/api/kafka/groups/nosuch", ""); status != 404 {
		t.Fatalf("unknown group: %d", status)
	}

	metrics := scrape(t, tb)
	for _, want := range []string{
		`kafka_consumergroup_lag{consumergroup="g",partition="0",topic="t"} 3`,
		`kafka_consumergroup_lag_sum{consumergroup="g",topic="t"} 3`,
		`yard_consumergroup_lag_total{consumergroup="g"} 3`,
		`kafka_consumergroup_current_offset{consumergroup="g",partition="0",topic="t"} 2`,
		`kafka_topic_partition_current_offset{partition="0",topic="t"} 5`,
		`kafka_topic_partition_oldest_offset{partition="1",topic="t"} 0`,
		`kafka_topic_partitions{topic="t"} 2`,
		`yard_kafka_request_duration_seconds_count{api="Produce"}`,
		`yard_log_group_commit_records_count`,
		`yard_log_fsync_duration_seconds_bucket`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(metrics)
	}
}

// kafkaTopicT is a client of tb's Kafka listener (partitions chosen by the records), its admin
// client, and a 60-second context, all ended when the test ends, with the topic "t" of two
// partitions created.
func kafkaTopicT(t *testing.T, tb *testBroker) (context.Context, *kgo.Client, *kadm.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.b.Addr("kafka").String()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	return ctx, cl, adm
}
