#!/usr/bin/env bash
# Rounds of random faults against a 3-process yard cluster on loopback (test/cluster), then the
# figures: rounds, records acknowledged, lost (must be 0), duplicated, longest unavailability
# per fault kind. `make test` runs the short version (3 rounds).
#
#   test/cluster/faults.sh [ROUNDS]        # default 100
#   YARD_CLUSTER_SEED=N test/cluster/faults.sh 20           # replay a run's faults
#   YARD_CLUSTER_FAULTS=kill,one-way test/cluster/faults.sh  # only these kinds
#   YARD_CLUSTER_LOG=run.log test/cluster/faults.sh         # the full log there (default: a temp file)
#
# When the run fails, the nodes' logs (without debug lines, then their last 4 MB) are kept in
# <log without .log>-nodes/.
#
# Kinds: kill, pause, partition, one-way, delay, empty-dir, full-disk (this one needs root to
# mount a tmpfs; it is left out otherwise).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-100}"
log="${YARD_CLUSTER_LOG:-$(mktemp -t yard-faults-XXXXXX.log)}"
export YARD_CLUSTER_LOGS="${log%.log}-nodes"
mkdir -p "$YARD_CLUSTER_LOGS"
echo "rounds: $rounds; full log: $log"
status=0
YARD_CLUSTER_ROUNDS="$rounds" go test -count=1 -v -timeout 0 -run '^TestClusterFaults$' ./test/cluster/ >"$log" 2>&1 || status=$?
grep -E '^\s+faults_test.go:[0-9]+: (rounds|round [0-9]+[: ])' "$log" || true
sed -n '/figures:/,/^\s*$/p' "$log" | grep -v '^\s*time=' | head -60
tail -3 "$log"
exit "$status"
