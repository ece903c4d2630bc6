package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metricValue is the value of the sample line starting with series in a scrape, or -1.
func metricValue(scrape, series string) float64 {
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitFor scrapes until cond holds on the scrape, or fails after a while.
func waitFor(t *testing.T, tb *testBroker, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := scrape(t, tb)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen in\n%s", what, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTopicTrafficMetrics(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(tb.b.Addr("kafka").String()), kgo.ConsumeTopics("t"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	var batch []*kgo.Record
	for i := range 5 {
		batch = append(batch, &kgo.Record{Topic: "t", Value: []byte(fmt.Sprint("value ", i))})
	}
	if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("last")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 6; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	in := `kafka_server_brokertopicmetrics_bytes_in_total{topic="t"}`
	out := `kafka_server_brokertopicmetrics_bytes_out_total{topic="t"}`
	m := waitFor(t, tb, "every byte fetched", func(m string) bool {
		return metricValue(m, out) > 0 && metricValue(m, out) == metricValue(m, in)
	})
	if n := metricValue(m, `kafka_server_brokertopicmetrics_messages_in_total{topic="t"}`); n != 6 {
		t.Errorf("messages in: %v, want 6", n)
	}
	// Two batches of at least the 61-byte header each.
	if n := metricValue(m, in); n < 2*61 {
		t.Errorf("bytes in: %v", n)
	}
}

func TestAMQPChannelsAndMethods(t *testing.T) {
	t.Parallel()
	tb := startBroker(t)
	_, ch := tb.amqpChannel(t)
	if _, err := ch.QueueDeclare("q", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("q", "c1", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "q", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	<-deliveries // left unacknowledged

	var chans []struct {
		Name              string `json:"name"`
		Number            int    `json:"number"`
		User              string `json:"user"`
		VHost             string `json:"vhost"`
		ConnectionDetails struct {
			Name     string `json:"name"`
			PeerHost string `json:"peer_host"`
		} `json:"connection_details"`
		PrefetchCount          int `json:"prefetch_count"`
		MessagesUnacknowledged int `json:"messages_unacknowledged"`
		ConsumerCount          int `json:"consumer_count"`
	}
	tb.get(t, "/api/channels", &chans)
	if len(chans) != 1 {
		t.Fatalf("channels: %+v", chans)
	}
	c := chans[0]
	if c.Number != 1 || c.User != "guest" || c.VHost != "/" || c.PrefetchCount != 3 || c.MessagesUnacknowledged != 1 ||
		c.ConsumerCount != 1 || c.Name != c.ConnectionDetails.Name+" (1)" || !strings.Contains(c.Name, " -> ") {
		t.Fatalf("channel: %+v", c)
	}
	var conns []struct {
		Name string `json:"name"`
	}
	tb.get(t, "/api/connections", &conns)
	if len(conns) != 1 || conns[0].Name != c.ConnectionDetails.Name {
		t.Fatalf("connections %+v, channel's %q", conns, c.ConnectionDetails.Name)
	}

	type consumer struct {
		ConsumerTag string `json:"consumer_tag"`
		Queue       struct {
			Name  string `json:"name"`
			VHost string `json:"vhost"`
		} `json:"queue"`
		ChannelDetails struct {
			Name   string `json:"name"`
			Number int    `json:"number"`
		} `json:"channel_details"`
		AckRequired   bool `json:"ack_required"`
		PrefetchCount int  `json:"prefetch_count"`
	}
	for _, path := range []string{"/api/consumers", "/api/consumers/%2F"} {
		var cs []consumer
		tb.get(t, path, &cs)
		if len(cs) != 1 || cs[0].ConsumerTag != "c1" || cs[0].Queue.Name != "q" || cs[0].Queue.VHost != "/" ||
			cs[0].ChannelDetails.Name != c.Name || cs[0].ChannelDetails.Number != 1 || !cs[0].AckRequired || cs[0].PrefetchCount != 3 {
			t.Fatalf("%s: %+v", path, cs)
		}
	}
	if status, body := tb.do(t, "PUT", "/api/vhosts/other", ""); status != http.StatusCreated {
		t.Fatalf("PUT /api/vhosts/other: %d %s", status, body)
	}
	var none []consumer
	tb.get(t, "/api/consumers/other", &none)
	if len(none) != 0 {
		t.Fatalf("consumers of another vhost: %+v", none)
	}

	m := scrape(t, tb)
	if n := metricValue(m, `yard_channels{protocol="amqp"}`); n != 1 {
		t.Errorf("yard_channels: %v, want 1", n)
	}
	for _, method := range []string{"channel.open", "queue.declare", "basic.qos", "basic.consume", "basic.publish"} {
		if n := metricValue(m, `yard_amqp_method_duration_seconds_count{method="`+method+`"}`); n != 1 {
			t.Errorf("%s count: %v, want 1", method, n)
		}
	}
	if !strings.Contains(m, `yard_amqp_method_duration_seconds_bucket{method="queue.declare",le="+Inf"} 1`) {
		t.Errorf("queue.declare has no buckets")
	}

	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, tb, "the channel closed", func(m string) bool { return metricValue(m, `yard_channels{protocol="amqp"}`) == 0 })
	tb.get(t, "/api/channels", &chans)
	if len(chans) != 0 {
		t.Fatalf("channels after close: %+v", chans)
	}
}
