package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// RunSetup runs an interop suite's setup script (which installs its real clients from the
// package registries, idempotently) and returns the KEY=value lines it printed on stdout:
// where each client landed. The script's progress goes to stderr. Call it from TestMain and
// exit non-zero on error, so that a missing client fails the suite instead of skipping it.
func RunSetup(script string) (map[string]string, error) {
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cannot install interop clients with %s: %w", script, err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}
