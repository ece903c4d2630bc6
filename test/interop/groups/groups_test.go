// Package groups_test drives consumer groups on a real `yard serve` process (test/harness):
// committed offsets across kill -9, kafka-python group members (classic protocol), and Apache
// Kafka's own kafka-consumer-groups tool (org.apache.kafka:kafka-tools 4.x), all installed
// from the package registries by setup.sh.
package groups_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

var tools struct{ python, kcat, kafkaToolsCP, javaCP string }

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env, err := harness.RunSetup(filepath.Join(filepath.Dir(file), "setup.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "groups interop:", err)
		os.Exit(1)
	}
	tools.python = env["PYTHON"]
	tools.kafkaToolsCP = env["KAFKA_TOOLS_CP"]
	tools.kcat = env["KCAT"]
	tools.javaCP = env["GROUPS_JAVA_CP"]
	os.Exit(m.Run())
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceKeyed writes records from..to-1 with keys pkg-<i%20> and the sequence as value.
func produceKeyed(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("pkg-%d", i%20)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func committed(t *testing.T, adm *kadm.Client, group string) map[int32]int64 {
	t.Helper()
	res, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	res.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
	return out
}

func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	res, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	res.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestOffsetsSurviveKill9: offsets acknowledged by OffsetCommit are there after kill -9; the
// group resumes where it committed, and a new group replays everything.
func TestOffsetsSurviveKill9(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx := context.Background()
	cl := client(t, y.KafkaAddr)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, "orders", 0, 600)
	member := client(t, y.KafkaAddr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxBytes(1000))
	read := 0
	for read < 250 {
		fs := member.PollRecords(ctx, 50)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		read += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	before := committed(t, adm, "billing")
	var sum int64
	for _, o := range before {
		sum += o
	}
	if sum != int64(read) {
		t.Fatalf("committed %d records' worth, read %d", sum, read)
	}
	member.Close() // leaves the group; what it committed stays
	y.Kill()
	y.Restart()
	cl2 := client(t, y.KafkaAddr)
	adm2 := kadm.NewClient(cl2)
	if after := committed(t, adm2, "billing"); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("offsets after kill -9: %v, acknowledged %v", after, before)
	}
	// The group resumes exactly after its commits; a new group replays from the start.
	resume := client(t, y.KafkaAddr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	fresh := client(t, y.KafkaAddr, kgo.ConsumerGroup("audit"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	count := func(c *kgo.Client, want int) {
		t.Helper()
		n := 0
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		for n < want {
			fs := c.PollFetches(pctx)
			if pctx.Err() != nil {
				t.Fatalf("read %d of %d", n, want)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset < before[r.Partition] && c == resume {
					t.Errorf("resumed group re-read %d/%d below its commit %d", r.Partition, r.Offset, before[r.Partition])
				}
				n++
			})
		}
		if n != want {
			t.Fatalf("read %d, want %d", n, want)
		}
	}
	count(resume, 600-read)
	count(fresh, 600)
}

// pyMember is a running group member program (group_consumer.py, java/GroupConsumer).
// assigned, count and keys are its first report; later reports go to reports.
type pyMember struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	assigned []int
	count    int
	keys     map[string][]int
	ready    chan struct{}
	err      error
	reports  chan memberReport
}

// memberReport is one report of a member.
type memberReport struct {
	assigned []int
	keys     map[string][]int
}

func startPython(t *testing.T, addr, topic, group string) *pyMember {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return startMember(t, tools.python, filepath.Join(filepath.Dir(file), "group_consumer.py"), addr, topic, group, "4")
}

// startJava runs java/GroupConsumer with group.protocol=protocol ("classic" or "consumer").
func startJava(t *testing.T, addr, topic, group, protocol string) *pyMember {
	t.Helper()
	return startMember(t, "java", "-cp", tools.javaCP, "dev.yard.groups.GroupConsumer", addr, topic, group, protocol, "6")
}

// startMember runs a group member program that reports as group_consumer.py does.
func startMember(t *testing.T, name string, args ...string) *pyMember {
	t.Helper()
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &pyMember{cmd: cmd, stdin: stdin, ready: make(chan struct{}), reports: make(chan memberReport, 16)}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	go func() {
		first := true
		defer func() {
			if first {
				close(m.ready)
			}
		}()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20)
		var r memberReport
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), " ")
			switch k {
			case "ASSIGNED":
				r = memberReport{keys: map[string][]int{}}
				for _, p := range strings.Split(v, ",") {
					n, _ := strconv.Atoi(p)
					r.assigned = append(r.assigned, n)
				}
			case "COUNT":
				if first {
					m.count, _ = strconv.Atoi(v)
				}
			case "KEYS":
				for _, kv := range strings.Split(v, ";") {
					key, seqs, ok := strings.Cut(kv, "=")
					if !ok {
						continue // read nothing
					}
					for _, s := range strings.Split(seqs, ",") {
						n, _ := strconv.Atoi(s)
						r.keys[key] = append(r.keys[key], n)
					}
				}
				if first {
					m.assigned, m.keys, first = r.assigned, r.keys, false
					close(m.ready)
					continue
				}
				select {
				case m.reports <- r:
				default: // nobody is waiting for more reports
				}
			}
		}
		if first {
			m.err = fmt.Errorf("group member ended without a report: %v", sc.Err())
		}
	}()
	return m
}

// consumerGroups runs Kafka's kafka-consumer-groups tool.
func consumerGroups(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr := kafkaTool(t, "kafka-consumer-groups", "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", args...)
	// The tool prints its errors ("Error: ...") on stderr; its SLF4J chatter is dropped.
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "SLF4J:") {
			lines = append(lines, l)
		}
	}
	return out + strings.Join(lines, "\n")
}

// kafkaTool runs one of Kafka's command-line tools, name (for messages) being its main class,
// with a two-minute limit; it fails t if the tool fails, else returns its stdout and stderr.
func kafkaTool(t *testing.T, name, class string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", append([]string{"-cp", tools.kafkaToolsCP, class}, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, errb.String())
	}
	return string(out), errb.String()
}

// describeRows parses kafka-consumer-groups --describe: partition -> columns.
func describeRows(t *testing.T, out, group, topic string) map[int32][]string {
	t.Helper()
	rows := map[int32][]string{}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(group) + `\s+` + regexp.QuoteMeta(topic) + `\s+(\d+)\s+.*$`)
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.Atoi(m[1])
		rows[int32(p)] = strings.Fields(m[0])
	}
	return rows
}

// TestPythonGroupAndKafkaConsumerGroupsTool: two kafka-python members share a 6-partition
// topic; Kafka's own tool describes the group (LAG = log end - committed), resets its offsets
// and deletes it.
func TestPythonGroupAndKafkaConsumerGroupsTool(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx := context.Background()
	cl := client(t, y.KafkaAddr)
	adm := kadm.NewClient(cl)
	const topic, group = "events", "py-group"
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, topic, 0, 600)
	members := []*pyMember{startPython(t, y.KafkaAddr, topic, group), startPython(t, y.KafkaAddr, topic, group)}
	checkMembers(t, members, 600)

	// The tool, while both members are there: every partition owned, LAG 0.
	checkToolDescribe(t, y.KafkaAddr, adm, group, topic, "kafka-python-"+group)
	for _, m := range members {
		m.stdin.Close()
		if err := m.cmd.Wait(); err != nil {
			t.Fatalf("kafka-python member: %v", err)
		}
	}
	restOfToolScenario(t, y, cl, adm, group, topic)
}

// checkMembers waits for every member's report and checks that the partitions are split
// evenly and disjointly, every record was read, and per key in order.
func checkMembers(t *testing.T, members []*pyMember, records int) {
	t.Helper()
	for _, m := range members {
		select {
		case <-m.ready:
		case <-time.After(3 * time.Minute):
			t.Fatal("group member never reported")
		}
		if m.err != nil {
			t.Fatal(m.err)
		}
	}
	owned := map[int]bool{}
	seen := map[int]bool{}
	for _, m := range members {
		if len(m.assigned) != 3 {
			t.Errorf("member holds %v, want 3 partitions", m.assigned)
		}
		for _, p := range m.assigned {
			if owned[p] {
				t.Errorf("partition %d owned twice", p)
			}
			owned[p] = true
		}
		for key, seqs := range m.keys {
			for i, s := range seqs {
				seen[s] = true
				if i > 0 && s <= seqs[i-1] {
					t.Errorf("key %s out of order: %v", key, seqs)
					break
				}
			}
		}
	}
	if len(owned) != 6 || len(seen) != records {
		t.Fatalf("owned %d partitions, saw %d distinct records", len(owned), len(seen))
	}
}

// checkToolDescribe runs kafka-consumer-groups --describe on an active, caught-up group.
func checkToolDescribe(t *testing.T, addr string, adm *kadm.Client, group, topic, clientID string) {
	t.Helper()
	ends := endOffsets(t, adm, topic)
	out := consumerGroups(t, "--bootstrap-server", addr, "--describe", "--group", group)
	rows := describeRows(t, out, group, topic)
	if len(rows) != 6 {
		t.Fatalf("describe rows: %d\n%s", len(rows), out)
	}
	for p, f := range rows {
		// GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
		if f[3] != strconv.FormatInt(ends[p], 10) || f[4] != f[3] || f[5] != "0" || f[6] == "-" || f[7] != "/127.0.0.1" || f[8] != clientID {
			t.Errorf("partition %d row %v (end %d)\n%s", p, f, ends[p], out)
		}
	}
}

// restOfToolScenario: the members left; the tool shows lag, resets offsets, deletes the group.
func restOfToolScenario(t *testing.T, y *harness.Yard, cl *kgo.Client, adm *kadm.Client, group, topic string) {
	t.Helper()
	ctx := context.Background()

	// More records: lag appears, the group is empty.
	produceKeyed(t, cl, topic, 600, 690)
	ends, got := endOffsets(t, adm, topic), committed(t, adm, group)
	out := consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--describe", "--group", group)
	if !strings.Contains(out, "Consumer group '"+group+"' has no active members.") {
		t.Errorf("no empty-group message:\n%s", out)
	}
	var lagged int64
	for p, f := range describeRows(t, out, group, topic) {
		lag := ends[p] - got[p]
		lagged += lag
		if f[3] != strconv.FormatInt(got[p], 10) || f[4] != strconv.FormatInt(ends[p], 10) || f[5] != strconv.FormatInt(lag, 10) {
			t.Errorf("partition %d: row %v, want current %d end %d lag %d", p, f, got[p], ends[p], lag)
		}
	}
	if lagged != 90 {
		t.Errorf("total lag %d, want 90", lagged)
	}

	// Dry run, then --execute.
	consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--dry-run")
	if after := committed(t, adm, group); fmt.Sprint(after) != fmt.Sprint(got) {
		t.Fatalf("dry run changed offsets: %v -> %v", got, after)
	}
	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
	reset := committed(t, adm, group)
	if len(reset) != 6 {
		t.Fatalf("after reset: %v\n%s", reset, out)
	}
	for p, o := range reset {
		if o != 0 {
			t.Errorf("partition %d reset to %d, want 0\n%s", p, o, out)
		}
	}
	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--reset-offsets", "--group", group, "--topic", topic+":2", "--shift-by", "5", "--execute")
	if o := committed(t, adm, group)[2]; o != 5 {
		t.Errorf("shift-by 5 on partition 2: %d\n%s", o, out)
	}

	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--delete-offsets", "--group", group, "--topic", topic+":2")
	if c := committed(t, adm, group); len(c) != 5 {
		t.Errorf("after --delete-offsets of partition 2: %v\n%s", c, out)
	} else if _, ok := c[2]; ok {
		t.Errorf("partition 2 still committed: %v\n%s", c, out)
	}
	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--list")
	if strings.TrimSpace(out) != group {
		t.Errorf("--list: %q", out)
	}
	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--delete", "--group", group)
	if !strings.Contains(out, "Deletion of requested consumer groups ('"+group+"') was successful.") {
		t.Errorf("--delete:\n%s", out)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := listed.Groups(); len(names) != 0 {
		t.Errorf("groups after --delete: %v", names)
	}
	if c := committed(t, adm, group); len(c) != 0 {
		t.Errorf("offsets after --delete: %v", c)
	}
	out = consumerGroups(t, "--bootstrap-server", y.KafkaAddr, "--describe", "--group", group)
	if !strings.Contains(out, "Consumer group '"+group+"' does not exist.") {
		t.Errorf("describe of a deleted group:\n%s", out)
	}
}

// TestJavaGroupProtocols: Java kafka-clients 4.x members, with the classic protocol and with
// KIP-848 (group.protocol=consumer, partitions assigned by the broker), share a 6-partition
// topic; Kafka's own tool describes them and manages their offsets.
func TestJavaGroupProtocols(t *testing.T) {
	for _, protocol := range []string{"consumer", "classic"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			y := harness.Start(t)
			ctx := context.Background()
			cl := client(t, y.KafkaAddr)
			adm := kadm.NewClient(cl)
			topic, group := "events-"+protocol, "java-"+protocol
			if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
				t.Fatal(err)
			}
			produceKeyed(t, cl, topic, 0, 600)
			members := []*pyMember{startJava(t, y.KafkaAddr, topic, group, protocol), startJava(t, y.KafkaAddr, topic, group, protocol)}
			checkMembers(t, members, 600)
			described, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			if d := described[group]; d.State != "Stable" || len(d.Members) != 2 {
				t.Fatalf("group %s: state %s, %d members", group, d.State, len(d.Members))
			}
			checkToolDescribe(t, y.KafkaAddr, adm, group, topic, "java-"+protocol+"-"+group)
			for _, m := range members {
				m.stdin.Close()
				if err := m.cmd.Wait(); err != nil {
					t.Fatalf("java member: %v", err)
				}
			}
			restOfToolScenario(t, y, cl, adm, group, topic)
		})
	}
}

// kcatGroup reads count records as a member of group with kcat's balanced consumer
// (librdkafka), which commits what it read when it exits; it returns the values read.
func kcatGroup(t *testing.T, addr, group, topic string, count int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.kcat, "-b", addr, "-G", group, "-c", strconv.Itoa(count), "-q",
		"-f", "%s\n", "-X", "auto.offset.reset=earliest", topic)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat -G: %v\n%s", err, stderr.String())
	}
	return strings.Fields(string(out))
}

// TestKcatGroupResumesFromCommits: librdkafka's consumer group commits what it read; the next
// member of the group resumes there, with nothing read twice or skipped.
func TestKcatGroupResumesFromCommits(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	cl := client(t, y.KafkaAddr)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(context.Background(), 3, 1, nil, "parcels"); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, "parcels", 0, 300)
	first := kcatGroup(t, y.KafkaAddr, "kcat-group", "parcels", 300)
	var sum int64
	for _, o := range committed(t, adm, "kcat-group") {
		sum += o
	}
	if len(first) != 300 || sum != 300 {
		t.Fatalf("kcat read %d, committed %d of 300", len(first), sum)
	}
	produceKeyed(t, cl, "parcels", 300, 360)
	second := kcatGroup(t, y.KafkaAddr, "kcat-group", "parcels", 60)
	seen := map[string]bool{}
	for _, v := range second {
		n, _ := strconv.Atoi(v)
		if n < 300 || seen[v] {
			t.Fatalf("resumed member read %s again (of %v)", v, second)
		}
		seen[v] = true
	}
}

// TestJavaRegexSubscription: a KIP-848 Java member subscribed with a SubscriptionPattern (the
// broker evaluates the regular expression) gets every matching topic's partitions.
func TestJavaRegexSubscription(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx := context.Background()
	cl := client(t, y.KafkaAddr)
	adm := kadm.NewClient(cl)
	for _, topic := range []string{"scans-eu", "scans-us", "other"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	produceKeyed(t, cl, "scans-eu", 0, 40)
	produceKeyed(t, cl, "scans-us", 40, 80)
	produceKeyed(t, cl, "other", 80, 100)
	m := startJava(t, y.KafkaAddr, "re:scans-.*", "java-regex", "consumer")
	select {
	case <-m.ready:
	case <-time.After(3 * time.Minute):
		t.Fatal("regex member never reported")
	}
	if m.err != nil {
		t.Fatal(m.err)
	}
	seen := map[int]bool{}
	for _, seqs := range m.keys {
		for _, s := range seqs {
			if s >= 80 {
				t.Errorf("read %d from a topic that does not match", s)
			}
			seen[s] = true
		}
	}
	// ASSIGNED lists partition numbers only: 0,0,1,1 for two 2-partition topics.
	if len(seen) != 80 || len(m.assigned) != 4 {
		t.Fatalf("regex member read %d of 80 records, holds %v", len(seen), m.assigned)
	}
	m.stdin.Close()
	if err := m.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestPythonMemberKilled: a kafka-python member killed with SIGKILL (no LeaveGroup) loses its
// partitions to the survivor after its session timeout; nothing is lost.
func TestPythonMemberKilled(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx := context.Background()
	cl := client(t, y.KafkaAddr)
	adm := kadm.NewClient(cl)
	const topic, group = "scans", "py-kill"
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, topic, 0, 600)
	victim, survivor := startPython(t, y.KafkaAddr, topic, group), startPython(t, y.KafkaAddr, topic, group)
	checkMembers(t, []*pyMember{victim, survivor}, 600)
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, cl, topic, 600, 660)
	var last memberReport
	deadline := time.After(2 * time.Minute)
	for len(last.assigned) != 6 {
		select {
		case last = <-survivor.reports:
		case <-deadline:
			t.Fatalf("survivor never took over; last report holds %v", last.assigned)
		}
	}
	seen := map[int]bool{}
	for _, r := range []map[string][]int{victim.keys, last.keys} {
		for _, seqs := range r {
			for _, s := range seqs {
				seen[s] = true
			}
		}
	}
	for i := 0; i < 660; i++ {
		if !seen[i] {
			t.Fatalf("record %d was never read (the victim read %d before dying)", i, victim.count)
		}
	}
}
