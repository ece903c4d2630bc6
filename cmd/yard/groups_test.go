package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// runGroups runs `yard groups ARGS...` in process and returns stdout, stderr and the error.
func runGroups(t *testing.T, addr string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newGroupsCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append(args, "--bootstrap-server", addr))
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// rowFields returns the fields of the describe/reset row for topic and partition.
func rowFields(t *testing.T, out, topic string, p int) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\S+\s+` + regexp.QuoteMeta(topic) + `\s+` + fmt.Sprint(p) + `\s.*$`)
	line := re.FindString(out)
	if line == "" {
		t.Fatalf("no row for %s-%d in:\n%s", topic, p, out)
	}
	return strings.Fields(line)
}

func TestGroupsCLI(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	offs := kadm.Offsets{}
	for p, at := range []int64{2, 5, 10} {
		offs.Add(kadm.Offset{Topic: "t", Partition: int32(p), At: at, LeaderEpoch: -1})
	}
	if r, err := adm.CommitOffsets(ctx, "g", offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}

	out, _, err := runGroups(t, y.KafkaAddr, "describe", "--group", "g")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Consumer group 'g' has no active members.") || !strings.Contains(out, "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID") {
		t.Fatalf("describe of an empty group:\n%s", out)
	}
	for p, want := range [][]string{{"g", "t", "0", "2", "10", "8", "-", "-", "-"}, {"g", "t", "1", "5", "10", "5", "-", "-", "-"}, {"g", "t", "2", "10", "10", "0", "-", "-", "-"}} {
		if got := rowFields(t, out, "t", p); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d: got %v want %v", p, got, want)
		}
	}

	_, errOut, err := runGroups(t, y.KafkaAddr, "describe", "--group", "missing")
	if err == nil || !strings.Contains(errOut, "Error: Consumer group 'missing' does not exist.") {
		t.Fatalf("describe of a missing group: %v %q", err, errOut)
	}

	// Dry run changes nothing; --execute does.
	out, _, err = runGroups(t, y.KafkaAddr, "reset-offsets", "--group", "g", "--topic", "t", "--to-earliest")
	if err != nil || rowFields(t, out, "t", 0)[3] != "0" {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	fetched, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fetched.Lookup("t", 0); o.At != 2 {
		t.Fatalf("dry run changed the offset to %d", o.At)
	}
	check := func(args []string, want []int64) {
		t.Helper()
		out, _, err := runGroups(t, y.KafkaAddr, append([]string{"reset-offsets", "--group", "g", "--topic", "t", "--execute"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		fetched, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		for p, w := range want {
			o, _ := fetched.Lookup("t", int32(p))
			if o.At != w || rowFields(t, out, "t", p)[3] != fmt.Sprint(w) {
				t.Errorf("%v partition %d: committed %d, want %d\n%s", args, p, o.At, w, out)
			}
		}
	}
	check([]string{"--shift-by", "-3"}, []int64{0, 2, 7})
	check([]string{"--to-offset", "4"}, []int64{4, 4, 4})
	check([]string{"--to-latest"}, []int64{10, 10, 10})
	check([]string{"--to-datetime", "2000-01-01T00:00:00.000"}, []int64{0, 0, 0})
	check([]string{"--to-datetime", time.Now().Add(time.Hour).Format("2006-01-02T15:04:05.000")}, []int64{10, 10, 10})
	check([]string{"--to-earliest"}, []int64{0, 0, 0})

	// An active member: describe shows it; reset and delete are refused.
	member, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"), kgo.ClientID("cli-test"))
	if err != nil {
		t.Fatal(err)
	}
	pollCtx, cancel := context.WithCancel(ctx)
	go func() {
		for pollCtx.Err() == nil {
			member.PollFetches(pollCtx)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, err = runGroups(t, y.KafkaAddr, "describe", "--group", "g")
		if err == nil && strings.Contains(out, "cli-test") && !strings.Contains(out, "rebalancing") && strings.Count(out, "/127.0.0.1") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member never appeared:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, errOut, err = runGroups(t, y.KafkaAddr, "reset-offsets", "--group", "g", "--topic", "t", "--to-latest", "--execute")
	if err == nil || !strings.Contains(errOut, "can only be reset if the group 'g' is inactive, but the current state is Stable") {
		t.Fatalf("reset of an active group: %v %q", err, errOut)
	}
	_, errOut, err = runGroups(t, y.KafkaAddr, "delete", "--group", "g")
	if err == nil || !strings.Contains(errOut, "NON_EMPTY_GROUP") {
		t.Fatalf("delete of an active group: %v %q", err, errOut)
	}
	cancel()
	member.Close() // leaves the group
	out, _, err = runGroups(t, y.KafkaAddr, "list")
	if err != nil || strings.TrimSpace(out) != "g" {
		t.Fatalf("list: %v %q", err, out)
	}
	out, _, err = runGroups(t, y.KafkaAddr, "delete", "--group", "g")
	if err != nil || !strings.Contains(out, "Deletion of requested consumer groups ('g') was successful.") {
		t.Fatalf("delete: %v %q", err, out)
	}
	out, _, err = runGroups(t, y.KafkaAddr, "list")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("list after delete: %v %q", err, out)
	}
}
