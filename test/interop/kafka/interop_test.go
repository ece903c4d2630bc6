// Package kafka_test drives a real `yard serve` process (test/harness) with Kafka clients from
// other ecosystems, installed from the package registries by setup.sh: kcat (librdkafka), the
// Java kafka-clients 4.x producer, consumer and Admin client (java/), kafka-python (interop.py),
// confluent-kafka's admin client (librdkafka_admin.py) and kafkajs (interop.js).
package kafka_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// tools are the clients setup.sh installed.
var tools struct {
	kcat, python, confluentPython, javaCP, javaSaslCP, kafkajsModules string
}

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env, err := harness.RunSetup(filepath.Join(filepath.Dir(file), "setup.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	tools.kcat = env["KCAT"]
	tools.python = env["PYTHON"]
	tools.confluentPython = env["CONFLUENT_PYTHON"]
	tools.javaCP = env["JAVA_CP"]
	tools.javaSaslCP = env["JAVA_SASL_CP"]
	tools.kafkajsModules = env["KAFKAJS_MODULES"]
	os.Exit(m.Run())
}

// rec is one record as a client printed it.
type rec struct {
	partition int32
	offset    int64
	key       string
	value     string
}

func run(t *testing.T, stdin string, name string, args ...string) []rec {
	t.Helper()
	out := runOutput(t, stdin, name, args...)
	var recs []rec
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 4)
		if len(f) != 4 {
			continue // a client's own chatter
		}
		p, err1 := strconv.Atoi(f[0])
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		recs = append(recs, rec{int32(p), o, f[2], f[3]})
	}
	return recs
}

// runOutput runs a client and returns its standard output.
func runOutput(t *testing.T, stdin string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, tailString(stderr.String(), 3000))
	}
	return out
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Client drivers: produce count keyed JSON records with codec; consume count records.

func javaProduce(t *testing.T, addr, topic string, count int, codec string) []rec {
	return run(t, "", "java", "-cp", tools.javaCP, "dev.yard.interop.Main", "produce", addr, topic, strconv.Itoa(count), codec)
}

func javaConsume(t *testing.T, addr, topic string, count int) []rec {
	return run(t, "", "java", "-cp", tools.javaCP, "dev.yard.interop.Main", "consume", addr, topic, strconv.Itoa(count))
}

func pythonProduce(t *testing.T, addr, topic string, count int, codec string) []rec {
	return run(t, "", tools.python, interopPy(), "produce", addr, topic, strconv.Itoa(count), codec)
}

func pythonConsume(t *testing.T, addr, topic string, count int) []rec {
	return run(t, "", tools.python, interopPy(), "consume", addr, topic, strconv.Itoa(count))
}

func interopPy() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "interop.py")
}

func kcatProduce(t *testing.T, addr, topic string, count int, codec string) []rec {
	var in strings.Builder
	for i := 0; i < count; i++ {
		fmt.Fprintf(&in, "PKG-%d\t{\"seq\":%d,\"status\":\"SCANNED\",\"client\":\"kcat\"}\n", 40000+i%10, i)
	}
	run(t, in.String(), tools.kcat, "-b", addr, "-t", topic, "-P", "-K", "\t", "-z", codec, "-X", "acks=all", "-X", "enable.idempotence=true")
	return nil
}

func kcatConsume(t *testing.T, addr, topic string, count int) []rec {
	return run(t, "", tools.kcat, "-b", addr, "-t", topic, "-C", "-o", "beginning", "-c", strconv.Itoa(count), "-q",
		"-f", "%p\t%o\t%k\t%s\n")
}

// checkRecords asserts that recs are exactly the count records a producer client sent: values
// intact, each sequence number once, keys as sent, per-key order kept, offsets increasing
// per partition.
func checkRecords(t *testing.T, recs []rec, count int, client string) {
	t.Helper()
	if len(recs) != count {
		t.Fatalf("got %d records, want %d", len(recs), count)
	}
	seen := make([]bool, count)
	lastSeq := map[string]int{}
	lastOff := map[int32]int64{}
	for _, r := range recs {
		var v struct {
			Seq    int    `json:"seq"`
			Status string `json:"status"`
			Client string `json:"client"`
		}
		if err := json.Unmarshal([]byte(r.value), &v); err != nil || v.Status != "SCANNED" || v.Client != client {
			t.Fatalf("value changed: %q (%v)", r.value, err)
		}
		if v.Seq < 0 || v.Seq >= count || seen[v.Seq] {
			t.Fatalf("sequence %d out of range or duplicated", v.Seq)
		}
		seen[v.Seq] = true
		if want := fmt.Sprintf("PKG-%d", 40000+v.Seq%10); r.key != want {
			t.Fatalf("record %d has key %q, want %q", v.Seq, r.key, want)
		}
		if prev, ok := lastSeq[r.key]; ok && v.Seq < prev {
			// Consumers interleave partitions, never records within one: per-key order holds.
			t.Fatalf("key %s: seq %d after %d", r.key, v.Seq, prev)
		}
		lastSeq[r.key] = v.Seq
		if prev, ok := lastOff[r.partition]; ok && r.offset <= prev {
			t.Fatalf("partition %d: offset %d after %d", r.partition, r.offset, prev)
		}
		lastOff[r.partition] = r.offset
	}
}

// readWithFranz reads count records with franz-go, in the rec shape.
func readWithFranz(t *testing.T, addr, topic string, count int) []rec {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []rec
	for len(recs) < count {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, rec{r.Partition, r.Offset, string(r.Key), string(r.Value)})
		})
	}
	return recs
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
}

// TestJavaSeedScenario is the seed's producer verbatim (acks=all, lz4, keys PKG-..., JSON
// values) into package-events with 6 partitions, then the Java consumer reads it back. Keys
// land where the Java partitioner (murmur2) puts them, which is also where `yard produce` and
// franz-go's StickyKeyPartitioner put them.
func TestJavaSeedScenario(t *testing.T) {
	y := harness.Start(t)
	const topic, n = "package-events", 200
	createTopic(t, y.KafkaAddr, topic, 6)
	acks := javaProduce(t, y.KafkaAddr, topic, n, "lz4")
	if len(acks) != n {
		t.Fatalf("java acknowledged %d of %d", len(acks), n)
	}
	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	for _, a := range acks {
		if want := part.Partition(&kgo.Record{Key: []byte(a.key)}, 6); int32(want) != a.partition {
			t.Fatalf("key %s went to partition %d; murmur2 says %d", a.key, a.partition, want)
		}
	}
	checkRecords(t, javaConsume(t, y.KafkaAddr, topic, n), n, "java")
}

// TestCodecsAcrossClients: every codec from three non-Go clients; each topic is read back by
// another client and by franz-go.
func TestCodecsAcrossClients(t *testing.T) {
	y := harness.Start(t)
	type client struct {
		name    string
		produce func(*testing.T, string, string, int, string) []rec
		consume func(*testing.T, string, string, int) []rec
	}
	clients := []client{
		{"java", javaProduce, javaConsume},
		{"kcat", kcatProduce, kcatConsume},
		{"kafka-python", pythonProduce, pythonConsume},
	}
	const n = 60
	for i, producer := range clients {
		reader := clients[(i+1)%len(clients)]
		for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
			topic := fmt.Sprintf("%s-%s", producer.name, codec)
			t.Run(topic+"-read-by-"+reader.name, func(t *testing.T) {
				createTopic(t, y.KafkaAddr, topic, 3)
				producer.produce(t, y.KafkaAddr, topic, n, codec)
				checkRecords(t, reader.consume(t, y.KafkaAddr, topic, n), n, producer.name)
				checkRecords(t, readWithFranz(t, y.KafkaAddr, topic, n), n, producer.name)
			})
		}
	}
}

// TestJavaAdmin: Kafka's Java Admin client creates, describes (DescribeTopicPartitions),
// configures, grows, lists offsets of and deletes a topic, and gets Kafka's exception for an
// invalid name.
func TestJavaAdmin(t *testing.T) {
	y := harness.Start(t)
	out := string(runOutput(t, "", "java", "-cp", tools.javaCP, "dev.yard.interop.Main", "admin", y.KafkaAddr, "admin-topic"))
	for _, want := range []string{
		"partitions=3", "topicIdSet=true", "retention.ms=3600000", "altered.retention.ms=7200000",
		"grown.partitions=4", "latest0=0", "nodes=1", "clusterIdSet=true",
		"badName=InvalidTopicException", "listedAfterDelete=false",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("Java admin output lacks %q:\n%s", want, out)
		}
	}
}

// TestJavaTransactions: the Java client's transactional producer commits, aborts and commits
// again, sending offsets with each transaction; a read_committed consumer sees the committed
// records only, a read_uncommitted one all, and the group's offset is the last committed one.
// With transaction.version 2 finalized (the default) the client uses KIP-890's version 2: the
// epoch is bumped at every transaction end, three times here; finalized at 1, never.
func TestJavaTransactions(t *testing.T) {
	for _, tc := range []struct {
		version   string
		wantEpoch int16
	}{{"2", 3}, {"1", 0}} {
		t.Run("tv"+tc.version, func(t *testing.T) {
			y := harness.Start(t, harness.WithArgs("--kafka-transaction-version", tc.version))
			out := string(runOutput(t, "", "java", "-cp", tools.javaCP, "dev.yard.interop.Main", "txn", y.KafkaAddr, "java-txn"))
			for _, want := range []string{
				"read_committed.records=10", "read_committed.aborted=0",
				"read_uncommitted.records=15", "read_uncommitted.aborted=5",
			} {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("Java transactions output lacks %q:\n%s", want, out)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			adm := kadm.NewClient(newClient(t, y.KafkaAddr))
			d, err := adm.DescribeTransactions(ctx, "java-txn")
			if err != nil {
				t.Fatal(err)
			}
			if s := d["java-txn"]; s.ProducerEpoch != tc.wantEpoch || s.State != "CompleteCommit" {
				t.Errorf("transaction state %s epoch %d, want CompleteCommit epoch %d", s.State, s.ProducerEpoch, tc.wantEpoch)
			}
			offs, err := adm.FetchOffsets(ctx, "java-txn-group")
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := offs.Lookup("java-txn", 0); !ok || o.At != 5 {
				t.Errorf("group offset %+v, want 5 (the last committed transaction's)", o)
			}
		})
	}
}

// TestLibrdkafkaAdmin: librdkafka 2.x's admin client (confluent-kafka) gets the authorized
// operations it asks for (its DescribeTopics and DescribeCluster fail on Kafka's "not
// provided"), answers from the ACL and SCRAM APIs instead of a dropped connection, and a
// transactional producer commits a transaction.
func TestLibrdkafkaAdmin(t *testing.T) {
	y := harness.Start(t)
	_, file, _, _ := runtime.Caller(0)
	out := string(runOutput(t, "", tools.confluentPython, filepath.Join(filepath.Dir(file), "librdkafka_admin.py"), "admin", y.KafkaAddr, "rd-admin"))
	for _, want := range []string{
		"topic.partitions=2",
		"topic.ops=ALTER,ALTER_CONFIGS,CREATE,DELETE,DESCRIBE,DESCRIBE_CONFIGS,READ,WRITE",
		"cluster.nodes=1", "cluster.controller=1",
		"cluster.ops=ALTER,ALTER_CONFIGS,CLUSTER_ACTION,CREATE,DESCRIBE,DESCRIBE_CONFIGS,IDEMPOTENT_WRITE",
		"group.ops=ALTER_CONFIGS,DELETE,DESCRIBE,DESCRIBE_CONFIGS,READ",
		"acls=none",                // librdkafka reports DescribeAcls' SECURITY_DISABLED as no ACLs, as against Kafka
		"scram=RESOURCE_NOT_FOUND", // no user alice: the user store answers as Kafka
		"txn=none",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("librdkafka admin output lacks %q:\n%s", want, out)
		}
	}
}

func kafkajs(t *testing.T, args ...string) []rec {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	t.Setenv("YARD_KAFKAJS_MODULES", tools.kafkajsModules)
	return run(t, "", "node", append([]string{filepath.Join(filepath.Dir(file), "interop.js")}, args...)...)
}

// TestKafkaJS: kafkajs (idempotent producer, acks=-1) with gzip, snappy and lz4, read back by a
// kafkajs consumer group and by franz-go.
func TestKafkaJS(t *testing.T) {
	y := harness.Start(t)
	const n = 60
	for _, codec := range []string{"gzip", "snappy", "lz4"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kafkajs-" + codec
			createTopic(t, y.KafkaAddr, topic, 3)
			kafkajs(t, "produce", y.KafkaAddr, topic, strconv.Itoa(n), codec)
			checkRecords(t, kafkajs(t, "consume", y.KafkaAddr, topic, strconv.Itoa(n)), n, "kafkajs")
			checkRecords(t, readWithFranz(t, y.KafkaAddr, topic, n), n, "kafkajs")
		})
	}
}
