#!/usr/bin/env bash
# Runs franz-go's own integration tests (package pkg/kgo of the franz-go version in go.mod)
# against yard and, with --broker kafka or both, against Apache Kafka 4.4 (bench/kafka/broker.sh),
# and prints pass/fail/skip counts per broker and the tests that failed.
#
#	bash test/interop/kafka/suites/franz-go.sh [--broker yard|kafka|both] [--run REGEX]
#	     [--records N] [--timeout DURATION]
#
# --run     the tests to run (go test's -run syntax); default '^(TestTxnEtl|TestGroupETL)$',
#           the transactional and the plain consume-transform-produce chains (the transactional
#           producer with EndAndBeginTransaction, GroupTransactSession consumers of six
#           balancer/KIP-848/static-membership kinds, read_committed). '.' runs the whole
#           package: its unit tests and every integration test.
# --records KGO_TEST_RECORDS, the records each chain produces (franz-go's default is 500,000;
#           default here 20,000: a transaction ends every 10,000).
# --timeout the test binary's -test.timeout (default 20m).
#
# The tests take the broker from the environment: KGO_SEEDS (the bootstrap address),
# KGO_TEST_RF=1 (topics of replication factor 1: one node), KGO_LOG_LEVEL=none. SCRAM, OAuth and
# TLS tests skip without their KGO_TEST_* variables; share-group tests skip on a broker without
# ShareFetch v2 (yard). The module's source comes from the Go module cache (`go mod download`),
# copied to ~/.cache/yard-interop/suites/franz-go/<version>, where the test binary is built.
# yard is built from this tree and served on a free loopback port with a fresh data dir.
# Results: $SUITE_OUT (default a temp dir, printed): <broker>.log (go test -v output) and
# <broker>.tsv (status, test: top-level tests and subtests).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cache="${HOME}/.cache/yard-interop/suites/franz-go"
brokers=yard run='^(TestTxnEtl|TestGroupETL)$' records=20000 timeout=20m
while [ $# -gt 0 ]; do
  case "$1" in
    --broker) brokers="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --records) records="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    *) echo "usage: $0 [--broker yard|kafka|both] [--run REGEX] [--records N] [--timeout DURATION]" >&2; exit 2 ;;
  esac
done
[ "$brokers" = both ] && brokers="kafka yard"
out="${SUITE_OUT:-$(mktemp -d)}"
mkdir -p "$out" "$cache"

# franz-go's source at go.mod's version, and its kgo test binary.
ver="$(cd "$root" && go list -m -f '{{.Version}}' github.com/twmb/franz-go)"
src="$cache/$ver"
bin="$cache/kgo-$ver.test"
if [ ! -x "$bin" ]; then
  moddir="$(cd "$root" && go mod download -json "github.com/twmb/franz-go@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$moddir/pkg/kgo" ] || { echo "franz-go.sh: cannot find franz-go $ver in the module cache" >&2; exit 1; }
  rm -rf "$src" && cp -r "$moddir" "$src" && chmod -R u+w "$src"
  echo "franz-go.sh: building franz-go $ver's kgo tests" >&2
  (cd "$src/pkg/kgo" && go test -c -o "$bin.tmp" . && mv "$bin.tmp" "$bin")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  local i
  for i in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "franz-go.sh: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

ypid="" kdata=""
cleanup() {
  if [ -n "$ypid" ]; then kill "$ypid" 2>/dev/null || true; wait "$ypid" 2>/dev/null || true; fi
  if [ -n "$kdata" ]; then bash "$root/bench/kafka/broker.sh" stop --data-dir "$kdata" >/dev/null 2>&1 || true; rm -rf "$kdata"; fi
  rm -rf "${ydata:-}"
}
trap cleanup EXIT

for broker in $brokers; do
  case "$broker" in
    yard)
      (cd "$root" && go build -o "$cache/yard" ./cmd/yard)
      port="$(free_port)"
      ydata="$(mktemp -d)"
      "$cache/yard" serve --data-dir "$ydata" --kafka-listen "127.0.0.1:$port" --amqp-listen "" \
        --http-listen "" --log-level warn > "$out/yard.server.log" 2>&1 &
      ypid=$!
      wait_port "$port"
      seeds="127.0.0.1:$port"
      ;;
    kafka)
      [ -f "$root/bench/kafka/broker.sh" ] || { echo "franz-go.sh: bench/kafka/broker.sh is missing" >&2; exit 1; }
      kdata="$(mktemp -d)"
      seeds="$(bash "$root/bench/kafka/broker.sh" start --data-dir "$kdata/data" | sed -n 's/^KAFKA_BOOTSTRAP=//p')"
      kdata="$kdata/data"
      ;;
    *) echo "franz-go.sh: unknown broker $broker" >&2; exit 2 ;;
  esac
  echo "franz-go.sh: running franz-go $ver's kgo tests ($run) against $broker at $seeds" >&2
  (cd "$src/pkg/kgo" && KGO_SEEDS="$seeds" KGO_TEST_RF=1 KGO_TEST_RECORDS="$records" KGO_LOG_LEVEL=none \
    "$bin" -test.v -test.run "$run" -test.timeout "$timeout" > "$out/$broker.log" 2>&1) || true
  sed -n 's/^\( *\)--- \(PASS\|FAIL\|SKIP\): \([^ ]*\).*/\2\t\1\3/p' "$out/$broker.log" > "$out/$broker.tsv"
  top() { grep -c "^$1"$'\t'"[^ ]" "$out/$broker.tsv" || true; }
  echo "$broker: $(top PASS) passed, $(top FAIL) failed, $(top SKIP) skipped (top-level tests)"
  grep "^FAIL" "$out/$broker.tsv" | sed 's/^FAIL\t/  failed: /' || true
  if [ "$broker" = yard ]; then kill "$ypid"; wait "$ypid" 2>/dev/null || true; ypid=""; rm -rf "$ydata"; fi
  if [ "$broker" = kafka ]; then bash "$root/bench/kafka/broker.sh" stop --data-dir "$kdata" >/dev/null 2>&1 || true; kdata=""; fi
done
echo "results in $out"
