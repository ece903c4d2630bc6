package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/yardmq/yard/test/harness"
)

func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	y.Stop() // fails the test unless the exit code is 0
	if !strings.Contains(y.Log(), "stopped") {
		t.Fatalf("no clean stop in log:\n%s", y.Log())
	}
}

func TestSecondServeOnSameDataDirIsRefused(t *testing.T) {
	t.Parallel()
	y := harness.Start(t)
	out, err := exec.Command(harness.Binary(t), "serve", "--data-dir", y.DataDir,
		"--kafka-listen", "127.0.0.1:0", "--amqp-listen", "127.0.0.1:0", "--http-listen", "").CombinedOutput()
	if err == nil {
		t.Fatalf("second serve succeeded:\n%s", out)
	}
	if !strings.Contains(string(out), "in use by another yard process") {
		t.Fatalf("unclear refusal:\n%s", out)
	}
}

func TestForeignDataDirIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.db"), []byte("not yard's"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(harness.Binary(t), "serve", "--data-dir", dir,
		"--kafka-listen", "", "--amqp-listen", "", "--http-listen", "").CombinedOutput()
	if err == nil {
		t.Fatalf("serve accepted a foreign data dir:\n%s", out)
	}
	if !strings.Contains(string(out), "holds something else (precious.db)") {
		t.Fatalf("unclear refusal:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "precious.db")); string(b) != "not yard's" {
		t.Fatal("foreign file was touched")
	}
}

// TestConfigFileAndEnvironment runs the real binary with settings from both sources: the
// environment must win over the file, and an empty value must disable a listener.
func TestConfigFileAndEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	conf := filepath.Join(dir, "yard.conf")
	if err := os.WriteFile(conf, []byte("# test\nkafka-listen = \"\"\namqp-listen = \"\"\nhttp-listen = 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harness.Binary(t), "serve", "--config", conf)
	cmd.Env = append(os.Environ(), "YARD_DATA_DIR="+filepath.Join(dir, "data"), "YARD_HTTP_LISTEN="+httpAddr,
		"YARD_MAX_OPEN_SEGMENT_FILES=7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("http listener from YARD_HTTP_LISTEN never came up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "yard.meta")); err != nil {
		t.Fatalf("YARD_DATA_DIR not used: %v", err)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(metrics), "\nyard_segment_files_open_max 7\n") {
		t.Fatalf("YARD_MAX_OPEN_SEGMENT_FILES=7 not in /metrics (err %v)", err)
	}
}

func TestApplyEnvAndFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(conf, []byte("a = from-file\nb = from-file\nc = from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	a, b, c, d := fs.String("a", "def", ""), fs.String("b", "def", ""), fs.String("c", "def", ""), fs.String("d", "def", "")
	fs.String("config", "", "")
	if err := fs.Parse([]string{"--a", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("YARD_A", "from-env")
	t.Setenv("YARD_B", "from-env")
	if err := applyEnvAndFile(fs, conf); err != nil {
		t.Fatal(err)
	}
	got := []string{*a, *b, *c, *d}
	want := []string{"from-flag", "from-env", "from-file", "def"}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("flag %d = %q, want %q", i, got[i], want[i])
		}
	}
	if err := os.WriteFile(conf, []byte("nope = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyEnvAndFile(fs, conf); err == nil || !strings.Contains(err.Error(), `unknown key "nope"`) {
		t.Fatalf("unknown key not refused: %v", err)
	}
}

// freeAddr is a loopback address for a listener the test hands to yard, reserved outside the
// kernel's ephemeral range so that no port-0 socket of a parallel test takes it meanwhile.
func freeAddr(t *testing.T) string { return harness.ReservePort(t) }
