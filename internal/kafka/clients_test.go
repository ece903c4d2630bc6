package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// TestSarama: IBM/sarama produces (sync, idempotent, each codec) and consumes.
func TestSarama(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	codecs := []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	adminCl, err := sarama.NewClusterAdmin([]string{ts.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adminCl.Close()
	if err := adminCl.CreateTopic("sarama", &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	want := map[int32][]string{}
	for _, codec := range codecs {
		c := *cfg
		c.Producer.Compression = codec
		p, err := sarama.NewSyncProducer([]string{ts.addr}, &c)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			v := fmt.Sprintf("%s-%d", codec, i)
			part, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "sarama", Key: sarama.StringEncoder(fmt.Sprint(i % 3)), Value: sarama.StringEncoder(v)})
			if err != nil {
				t.Fatalf("%s: %v", codec, err)
			}
			want[part] = append(want[part], v)
		}
		p.Close()
	}
	cons, err := sarama.NewConsumer([]string{ts.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for part, vals := range want {
		pc, err := cons.ConsumePartition("sarama", part, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			select {
			case m := <-pc.Messages():
				if string(m.Value) != v || m.Offset != int64(i) {
					t.Fatalf("partition %d #%d: got %q@%d, want %q", part, i, m.Value, m.Offset, v)
				}
			case err := <-pc.Errors():
				t.Fatal(err)
			case <-time.After(60 * time.Second):
				t.Fatalf("partition %d: timed out waiting for record %d", part, i)
			}
		}
		pc.Close()
	}
}

// TestKafkaGo: segmentio/kafka-go writes (each codec) and reads.
func TestKafkaGo(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := kafkago.DialContext(ctx, "tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(kafkago.TopicConfig{Topic: "kgo-seg", NumPartitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, codec := range []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		w := &kafkago.Writer{Addr: kafkago.TCP(ts.addr), Topic: "kgo-seg", RequiredAcks: kafkago.RequireAll, Compression: codec, BatchTimeout: time.Millisecond}
		var msgs []kafkago.Message
		for i := 0; i < 10; i++ {
			v := fmt.Sprintf("%v-%d", codec, i)
			msgs = append(msgs, kafkago.Message{Key: []byte("k"), Value: []byte(v)})
			want = append(want, v)
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("%v: %v", codec, err)
		}
		w.Close()
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: []string{ts.addr}, Topic: "kgo-seg", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i, v := range want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) != v || m.Offset != int64(i) {
			t.Fatalf("#%d: got %q@%d, want %q", i, m.Value, m.Offset, v)
		}
	}
}

// TestKafkaGoDeleteTopics is kafka-go's own testDeleteTopics: after DeleteTopics,
// ReadPartitions on a connection to another topic's leader (Metadata, which auto-creates)
// must list no partitions. Kafka creates the topics again but answers LEADER_NOT_AVAILABLE
// without partitions in that response, which kafka-go ignores for topics other than the
// connection's; yard does the same.
func TestKafkaGoDeleteTopics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopics(ctx, 1, 1, nil, "kgo-conn"); err != nil {
		t.Fatal(err)
	}
	conn, err := kafkago.DialLeader(ctx, "tcp", ts.addr, "kgo-conn", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.CreateTopics(
		kafkago.TopicConfig{Topic: "kgo-del-1", NumPartitions: 1, ReplicationFactor: 1},
		kafkago.TopicConfig{Topic: "kgo-del-2", NumPartitions: 1, ReplicationFactor: 1},
	); err != nil {
		t.Fatal(err)
	}
	if err := conn.DeleteTopics("kgo-del-1", "kgo-del-2"); err != nil {
		t.Fatal(err)
	}
	partitions, err := conn.ReadPartitions("kgo-del-1", "kgo-del-2")
	if err != nil {
		t.Fatalf("ReadPartitions after DeleteTopics: %v", err)
	}
	if len(partitions) != 0 {
		t.Fatalf("ReadPartitions after DeleteTopics: %d partitions, want none", len(partitions))
	}
}
