package amqp_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/yardmq/yard/test/harness"
)

// amqplibDifferences are the tests of amqplib 0.10's own suite that fail on yard by design,
// each with the reason; every other test the suite reports must pass (against RabbitMQ 3.10.8
// every one of them passes).
var amqplibDifferences = map[string]string{
	// It asserts that the server's product is "RabbitMQ"; yard says "yard".
	"Connect API serverProperties": "server product is yard",
}

var tapPoint = regexp.MustCompile(`^(not ok|ok) \d+ (.*?)( # SKIP.*)?$`)

// suiteScript runs in a network namespace of its own: `yard serve` on port 5672 of its
// loopback (some of the suite's tests connect to localhost:5672 and [::1]:5672 whatever $URL
// says), then mocha on each test file given, each bounded in time, TAP on stdout.
const suiteScript = `set -u
ip link set lo up
bin="$1" data="$2" log="$3"; shift 3
"$bin" serve --data-dir "$data" --kafka-listen "" --http-listen "" --amqp-listen :5672 --log-level info >"$log" 2>&1 &
ypid=$!
trap 'kill $ypid 2>/dev/null; wait $ypid 2>/dev/null' EXIT
for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.1; done
export URL=amqp://guest:guest@127.0.0.1:5672
for f; do
  timeout -k 5 60 ./node_modules/.bin/mocha --check-leaks -u tdd --exit --timeout 10000 -R tap "$f"
  rc=$?
  [ $rc = 124 ] && echo "TIMEOUT $f"
done
exit 0
`

// TestAmqplibOwnSuite runs the test folder of amqplib 0.10's npm package (setup.sh installs
// it with its runner, mocha) against a `yard serve` process, as test/interop/amqp/suites/run.sh
// does against yard and RabbitMQ side by side: the suite reads the broker's URL from $URL, but
// some of its tests connect to localhost:5672 regardless, so yard runs in a network namespace
// of its own (unshare --net, root) listening on port 5672 there. Each test file is a mocha run
// of its own, bounded in time, as its Makefile runs them together.
func TestAmqplibOwnSuite(t *testing.T) {
	dir := tools["AMQPLIB_SUITE"]
	if dir == "" {
		t.Fatal("setup.sh did not install amqplib 0.10's test suite")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace (unshare --net)")
	}
	if out, err := exec.Command("unshare", "--net", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (unshare --net, ip): %v %s", err, out)
	}
	files, err := filepath.Glob(filepath.Join(dir, "test", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--net", "bash", "-c", suiteScript, "suite", harness.Binary(t), filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "yard.log")}
	for _, f := range files {
		if filepath.Base(f) != "util.js" { // helpers, no tests
			args = append(args, filepath.Join("test", filepath.Base(f)))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Dir = dir
	cmd.WaitDelay = 10 * time.Second
	out, runErr := cmd.CombinedOutput()
	if ctx.Err() != nil || runErr != nil {
		t.Fatalf("amqplib's suite did not run to its end (%v):\n%s", runErr, tailString(string(out), 8000))
	}
	passed, skipped := 0, 0
	seen := map[string]bool{}
	var failed []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "TIMEOUT ") {
			failed = append(failed, sc.Text())
			continue
		}
		m := tapPoint.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		title := m[2]
		seen[title] = true
		switch {
		case m[3] != "":
			skipped++
		case m[1] == "ok":
			passed++
			if why, ok := amqplibDifferences[title]; ok {
				t.Logf("%q passes although listed as a difference (%s)", title, why)
			}
		case amqplibDifferences[title] != "":
			t.Logf("%q fails as expected: %s", title, amqplibDifferences[title])
		default:
			failed = append(failed, title)
		}
	}
	t.Logf("amqplib 0.10's suite on yard: %d passed, %d skipped, %d failed beyond the listed differences", passed, skipped, len(failed))
	// The package's suite has 452 tests (about 100 of them against the broker): a run that
	// reports far fewer did not run.
	if passed < 400 {
		t.Fatalf("only %d tests passed:\n%s", passed, tailString(string(out), 8000))
	}
	for title := range amqplibDifferences {
		if !seen[title] {
			t.Errorf("listed difference %q is not in the suite any more", title)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("failed on yard: %q\n%s", failed, tailString(string(out), 12000))
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
