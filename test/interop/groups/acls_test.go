package groups_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/yardmq/yard/test/harness"
)

// kafkaACLs runs Kafka's own kafka-acls tool (org.apache.kafka.tools.AclCommand).
func kafkaACLs(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := kafkaTool(t, "kafka-acls", "org.apache.kafka.tools.AclCommand", args...)
	return out
}

// TestKafkaACLsTool: Kafka's kafka-acls adds, lists and removes ACLs on yard run with
// --kafka-authorizer=acl; they survive a restart (kafka-acls.json).
func TestKafkaACLsTool(t *testing.T) {
	t.Parallel()
	// The tool connects over PLAINTEXT as User:ANONYMOUS, made a super user here.
	y := harness.Start(t, harness.WithArgs("--kafka-authorizer=acl", "--super-users=ANONYMOUS"))
	kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--add", "--allow-principal", "User:alice",
		"--operation", "Read", "--topic", "t")
	kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1",
		"--operation", "Write", "--topic", "logs-", "--resource-pattern-type", "prefixed")
	kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--add", "--allow-principal", "User:alice",
		"--operation", "All", "--group", "*")
	out := kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--list", "--topic", "t")
	if !strings.Contains(out, "principal=User:alice") || !strings.Contains(out, "operation=READ") || !strings.Contains(out, "permissionType=ALLOW") {
		t.Fatalf("kafka-acls --list --topic t:\n%s", out)
	}
	out = kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--list")
	for _, want := range []string{"name=logs-, patternType=PREFIXED", "host=10.0.0.1", "permissionType=DENY", "name=*, patternType=LITERAL", "operation=ALL"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kafka-acls --list lacks %q:\n%s", want, out)
		}
	}

	y.Restart()
	adm := kadm.NewClient(client(t, y.KafkaAddr))
	res, err := adm.DescribeACLs(context.Background(), kadm.NewACLs().AnyResource().Allow().Deny().AllowHosts().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(res) != 1 || res[0].Err != nil || len(res[0].Described) != 3 {
		t.Fatalf("after restart: %v %+v", err, res)
	}

	kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--remove", "--force", "--allow-principal", "User:alice",
		"--operation", "Read", "--topic", "t")
	out = kafkaACLs(t, "--bootstrap-server", y.KafkaAddr, "--list", "--topic", "t")
	if strings.Contains(out, "User:alice") {
		t.Fatalf("ACL still listed after --remove:\n%s", out)
	}
}
