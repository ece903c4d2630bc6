package kafka_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

// TestKafkaPythonSASL: kafka-python produces over SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 as the store's default user, and is refused with a wrong password.
func TestKafkaPythonSASL(t *testing.T) {
	y := harness.Start(t, harness.WithKafkaSecurityProtocol("SASL_PLAINTEXT"),
		harness.WithArgs("--amqp-default-user", "kp", "--amqp-default-pass", "kp-secret"))
	sasl := func(mech, pass string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, tools.python, interopPy(), "sasl", y.KafkaAddr, "sasl-"+strings.ToLower(mech), mech, "kp", pass).CombinedOutput()
		return string(out), err
	}
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		if out, err := sasl(mech, "kp-secret"); err != nil || !strings.Contains(out, "\tk\tv") {
			t.Errorf("%s with the right password: %v\n%s", mech, err, out)
		}
		if out, err := sasl(mech, "wrong"); err == nil || !strings.Contains(out, "AUTH-FAILED") {
			t.Errorf("%s with a wrong password: %v\n%s", mech, err, out)
		}
	}
}
