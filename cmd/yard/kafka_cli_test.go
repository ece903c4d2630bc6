package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// runYard runs the CLI in process with stdin and returns stdout, stderr and the error.
func runYard(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// TestKafkaCLI drives `yard topics`, `yard produce` and `yard consume` against a real server.
func TestKafkaCLI(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	bs := []string{"--bootstrap-server", y.KafkaAddr}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runYard(t, stdin, append(args, bs...)...)
		if err != nil {
			t.Fatalf("yard %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}
	out := must("", "topics", "create", "--topic", "cli", "--partitions", "3", "--config", "retention.ms=3600000")
	if !strings.Contains(out, "Created topic cli") {
		t.Fatalf("create: %q", out)
	}
	if out := must("", "topics", "list"); !strings.Contains(out, "cli\n") {
		t.Fatalf("list: %q", out)
	}
	must("", "topics", "alter", "--topic", "cli", "--partitions", "4", "--config", "retention.ms=7200000")
	out = must("", "topics", "describe", "--topic", "cli")
	if !strings.Contains(out, "PartitionCount: 4") || !strings.Contains(out, "retention.ms=7200000") {
		t.Fatalf("describe: %q", out)
	}

	// Keyed lines all land in the partition Java's murmur2 partitioner picks.
	must("one\ntwo\nthree\n", "produce", "--topic", "cli", "--key", "PKG-40291")
	want := kgo.StickyKeyPartitioner(nil).ForTopic("cli").Partition(&kgo.Record{Key: []byte("PKG-40291")}, 4)
	out = must("", "consume", "--topic", "cli", "--from-beginning", "-n", "3", "--print-key")
	if out != "PKG-40291\tone\nPKG-40291\ttwo\nPKG-40291\tthree\n" {
		t.Fatalf("consume: %q", out)
	}
	out = must("", "consume", "--topic", "cli", "--partition", strconv.Itoa(want), "--offset", "1", "-n", "2")
	if out != "two\nthree\n" {
		t.Fatalf("consume partition %d from offset 1: %q", want, out)
	}
	must("u1\nu2\nu3\nu4\nu5\nu6\n", "produce", "--topic", "cli")
	if out := must("", "consume", "--topic", "cli", "--from-beginning", "-n", "9"); strings.Count(out, "\n") != 9 {
		t.Fatalf("consume all: %q", out)
	}

	// Errors come back as messages and a failing exit.
	if _, _, err := runYard(t, "", append([]string{"topics", "create", "--topic", "bad name"}, bs...)...); err == nil || !strings.Contains(err.Error(), "INVALID_TOPIC_EXCEPTION") {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := runYard(t, "", append([]string{"topics", "alter", "--topic", "cli", "--config", "cleanup.policy=compacted"}, bs...)...); err == nil || !strings.Contains(err.Error(), "compact") {
		t.Fatalf("compacted: %v", err)
	}
	must("", "topics", "alter", "--topic", "cli", "--config", "cleanup.policy=compact,delete")
	if _, _, err := runYard(t, "", append([]string{"consume", "--topic", "nope", "-n", "1"}, bs...)...); err == nil || !strings.Contains(err.Error(), "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("consume unknown topic: %v", err)
	}
	must("auto\n", "produce", "--topic", "auto-created") // the broker auto-creates topics by default
	if out := must("", "consume", "--topic", "auto-created", "--from-beginning", "-n", "1"); out != "auto\n" {
		t.Fatalf("consume auto-created: %q", out)
	}
	must("", "topics", "delete", "--topic", "cli")
	if out := must("", "topics", "list"); strings.Contains(out, "cli\n") {
		t.Fatalf("list after delete: %q", out)
	}
}
