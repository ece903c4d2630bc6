// Package ops runs operators' tools written for RabbitMQ's management API against a real
// `yard serve`, unchanged: monitoring-plugins' check_rabbitmq_* (check_rabbitmq_test.go),
// KEDA's RabbitMQ scaler (keda_test.go) and OpenTofu with the Terraform RabbitMQ provider
// (tofu_test.go). setup.sh installs them; KEDA's scaler, OpenTofu and the provider are built
// from their Go modules only with YARD_OPS_TOOLS=1 (minutes, once; then cached) and their
// tests run whenever they are built. Without them a short test checks the HTTP and AMQP
// contract KEDA's scaler reads.
package ops

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/yardmq/yard/test/harness"
)

var tools map[string]string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env, err := harness.RunSetup(filepath.Join(filepath.Dir(file), "setup.sh"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ops interop:", err)
		os.Exit(1)
	}
	tools = env
	os.Exit(m.Run())
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// tool returns the path of a tool setup.sh built, or skips the test (they are built with
// YARD_OPS_TOOLS=1).
func tool(t *testing.T, key string) string {
	t.Helper()
	p := tools[key]
	if p == "" {
		t.Skipf("%s is not built: run with YARD_OPS_TOOLS=1 (test/interop/ops/setup.sh builds it once)", key)
	}
	return p
}
