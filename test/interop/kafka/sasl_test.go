package kafka_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
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

// TestJavaSASLSSL: Kafka's Java client (kafka-clients 4.4) over SASL_SSL with SCRAM-SHA-512
// and PLAIN, trusting only the test's CA (a PEM truststore; the broker's name checked):
// creates a topic, produces and consumes with the right password, and is refused
// (SaslAuthenticationException) with a wrong one.
func TestJavaSASLSSL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := tlsconftest.NewCA(t, "interop CA")
	files := ca.WriteServer(t, dir, "yard")
	y := harness.Start(t, harness.WithKafkaListener("SASL_SSL"), harness.WithArgs(
		"--tls-cert-file", files.Cert, "--tls-key-file", files.Key,
		"--amqp-default-user", "jv", "--amqp-default-pass", "jv-secret"))
	addr := y.KafkaListeners["SASL_SSL"]
	java := func(mech, pass, topic string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "java", "-cp", tools.javaSaslCP, "dev.yard.interop.SaslSsl",
			addr, mech, "jv", pass, files.ClientCA, topic).CombinedOutput()
		return string(out), err
	}
	for _, mech := range []string{"SCRAM-SHA-512", "PLAIN"} {
		topic := "java-sasl-ssl-" + strings.ToLower(mech)
		if out, err := java(mech, "jv-secret", topic); err != nil || !strings.Contains(out, "OK produced=10 consumed=10") {
			t.Errorf("%s with the right password: %v\n%s", mech, err, out)
		}
		if out, err := java(mech, "wrong", topic+"-refused"); err == nil || !strings.Contains(out, "AUTH-FAILED") {
			t.Errorf("%s with a wrong password: %v\n%s", mech, err, out)
		}
	}
}
