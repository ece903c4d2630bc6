// Package franzgo runs franz-go's own integration tests (its pkg/kgo tests, from the franz-go
// version in go.mod, taken from the Go module cache) against a yard process. The test here
// runs the transactional consume-transform-produce chain (TestTxnEtl) with few records, as
// `make test` affords; test/interop/kafka/suites/franz-go.sh runs more of the package, or all
// of it, against yard and Apache Kafka.
package franzgo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

// franzGoModule returns the directory of go.mod's franz-go in the module cache, downloading
// it if needed; the test is skipped if the module cache cannot be populated.
func franzGoModule(t *testing.T) (dir, version string) {
	t.Helper()
	root := harness.ModuleRoot(t)
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/twmb/franz-go")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cannot find franz-go's version in go.mod: %v", err)
	}
	version = strings.TrimSpace(string(out))
	cmd = exec.Command("go", "mod", "download", "-json", "github.com/twmb/franz-go@"+version)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	if err != nil || info.Error != "" || info.Dir == "" {
		t.Skipf("cannot populate the Go module cache with franz-go %s: %v %s %s", version, err, info.Error, stderr.String())
	}
	return info.Dir, version
}

// TestFranzGoTxnEtl: franz-go's TestTxnEtl against yard: a transactional producer
// (EndAndBeginTransaction every 10,000 records) feeds chains of GroupTransactSession
// consumers (range, cooperative-sticky, KIP-848 range and sticky, static members) that
// consume read_committed and produce transactionally to the next topic, some quitting
// mid-way; every record must arrive once and in order at every level.
func TestFranzGoTxnEtl(t *testing.T) {
	dir, version := franzGoModule(t)
	bin := filepath.Join(t.TempDir(), "kgo.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = filepath.Join(dir, "pkg", "kgo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build franz-go %s's kgo tests: %v\n%s", version, err, out)
	}
	y := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, bin, "-test.run", "^TestTxnEtl$", "-test.v", "-test.timeout", "4m")
	run.Dir = t.TempDir()
	run.Env = append(os.Environ(),
		"KGO_SEEDS="+y.KafkaAddr,
		"KGO_TEST_RF=1",
		"KGO_TEST_RECORDS=12000", // two transactions
		"KGO_LOG_LEVEL=none",
	)
	out, err := run.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestTxnEtl")) {
		t.Fatalf("franz-go %s TestTxnEtl against yard: %v\n%s", version, err, out)
	}
}
