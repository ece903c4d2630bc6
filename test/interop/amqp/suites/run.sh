#!/usr/bin/env bash
# Runs AMQP clients' own test suites against yard and against RabbitMQ (Debian's
# rabbitmq-server) with the same settings, and prints pass/fail/skip counts per broker and
# the tests that pass on RabbitMQ but fail on yard.
#
#	bash test/interop/amqp/suites/run.sh [--pika DIR] [--amqplib DIR] [--brokers "rabbitmq yard"]
#
# Suites:
#   amqplib 0.10  always: the test/ folder of amqplib 0.10's npm package (installed from the
#                 registry), run with its own runner (mocha, tdd UI) one file at a time.
#   pika          with --pika DIR: DIR is a checkout of pika's repository at the tag of the pika
#                 version to test (no registry package ships tests/acceptance). Its
#                 tests/acceptance run with pytest (and pytest-timeout, gevent, tornado,
#                 twisted, as pika's own test environment) against pika installed from PyPI
#                 at the checkout's version; only tests/ and testdata/ are taken from DIR.
#   amqplib 2.x   with --amqplib DIR: DIR is a checkout of amqplib's repository (2.x, node's
#                 own test runner); its test/ runs against the checkout's lib/.
#
# The suites take the broker's address from the environment (amqplib: URL, default
# amqp://localhost) or not at all (pika's acceptance tests connect to 127.0.0.1:5672 and
# localhost:5672; some of amqplib's connect tests too, and one [::1]:5672). So each broker
# runs in a network namespace of its own (unshare --net, root), listening on port 5672 of all
# addresses there, which are only that namespace's loopback (127.0.0.1 and ::1), with the
# suites run inside it: no port of the machine is taken and the suites run unmodified.
# RabbitMQ is a throwaway node with its data in a temp dir (as bench/amqp/run.sh); yard is
# built from this tree and started with `yard serve` on a fresh data dir; both with their
# default settings and the guest user.
#
# Bounds: every test file runs under `timeout` (SUITE_FILE_TIMEOUT, default 900 s); pika's
# tests each under pytest-timeout (SUITE_TEST_TIMEOUT, default 60 s); amqplib's under its
# runner's per-test timeout (mocha: SUITE_JS_TIMEOUT_MS, default 10000: the machine may be
# loaded; node's test runner: SUITE_NODE_TIMEOUT_MS, default 300000, since node applies it to
# each file as a whole too).
# A file killed by its timeout is reported, and its unreported tests count as failed only if
# they passed on the other broker (they are listed).
#
# Excluded, with the reason:
#   - nothing from amqplib 0.10 or 2.x; nothing from pika's tests/acceptance either: none of
#     them uses RabbitMQ's management tools or plugins. pika's TLS variants run only with
#     --use-tls, which this script does not pass (neither broker listens for TLS here).
#     Tests that fail on both alike stay in: pika's three getaddrinfo tests of www.google.com
#     (no network here), its kqueue variants (skipped on Linux), and the invalid exchange
#     type test (both close the connection with 503 where the test expects a channel 406).
# Counts are of distinct test names (a file may repeat a title).
# Results go to $SUITE_OUT (default a temp dir, printed): <broker>/<suite>.tsv (status, test)
# and <broker>/<suite>.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cache="${HOME}/.cache/yard-interop/suites"
file_timeout="${SUITE_FILE_TIMEOUT:-900}"
test_timeout="${SUITE_TEST_TIMEOUT:-60}"
js_timeout="${SUITE_JS_TIMEOUT_MS:-10000}"
node_timeout="${SUITE_NODE_TIMEOUT_MS:-300000}"

if [ "${1:-}" = __inner ]; then
  # In a network namespace of our own: bring loopback up, start one broker on 5672, run the
  # suites, stop the broker.
  broker="$2" out="$3"; shift 3
  ip link set lo up
  dir="$out/$broker"; mkdir -p "$dir"
  tmp="$(mktemp -d)"; chmod 755 "$tmp"
  bpid=""
  stop() {
    if [ "$broker" = rabbitmq ]; then
      rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
      epmd -kill >/dev/null 2>&1 || true
    fi
    if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
    rm -rf "$tmp"
  }
  trap stop EXIT
  if [ "$broker" = rabbitmq ]; then
    export RABBITMQ_NODENAME="yardsuite$$@localhost" RABBITMQ_NODE_PORT=5672 \
      RABBITMQ_DIST_PORT=25672 RABBITMQ_MNESIA_BASE="$tmp/mnesia" RABBITMQ_LOG_BASE="$tmp/log" \
      RABBITMQ_CONFIG_FILE="$tmp/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$tmp/enabled_plugins"
    echo "[]." > "$tmp/enabled_plugins"
    chown -R rabbitmq: "$tmp" 2>/dev/null || true
    rabbitmq-server > "$dir/broker.out" 2>&1 &
    bpid=$!
    ok=""
    for _ in $(seq 1 180); do
      if rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup >/dev/null 2>&1; then ok=1; break; fi
      sleep 1
    done
    [ -n "$ok" ] || { echo "RabbitMQ did not start; see $dir/broker.out" >&2; exit 1; }
    echo "RabbitMQ $(rabbitmqctl -n "$RABBITMQ_NODENAME" version 2>/dev/null)" > "$dir/version"
  else
    "$out/bin/yard" serve --data-dir "$tmp/data" --kafka-listen "" --http-listen "" \
      --amqp-listen :5672 --log-level warn > "$dir/broker.out" 2>&1 &
    bpid=$!
    for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.1; done
    echo "yard $("$out/bin/yard" version 2>/dev/null | head -1)" > "$dir/version"
  fi
  export URL=amqp://guest:guest@127.0.0.1:5672
  for suite in "$@"; do
    : > "$dir/$suite.tsv"; : > "$dir/$suite.log"
    case "$suite" in
    amqplib-0.10)
      pkg="$cache/amqplib-0.10/package"
      for f in "$pkg"/test/*.js; do
        [ "$(basename "$f")" = util.js ] && continue
        rc=0
        (cd "$pkg" && timeout -k 10 "$file_timeout" ./node_modules/.bin/mocha --check-leaks -u tdd --exit \
          --timeout "$js_timeout" -R tap "test/$(basename "$f")") > "$tmp/out" 2>&1 || rc=$?
        cat "$tmp/out" >> "$dir/$suite.log"
        [ "$rc" = 124 ] && printf 'TIMEOUT\t%s\n' "$(basename "$f")" >> "$dir/$suite.tsv"
        python3 "$here/tap.py" "$(basename "$f" .js)" < "$tmp/out" >> "$dir/$suite.tsv"
      done ;;
    amqplib-repo)
      for f in "$AMQPLIB_DIR"/test/*.test.js; do
        rc=0
        (cd "$AMQPLIB_DIR" && timeout -k 10 "$file_timeout" node --test --test-timeout="$node_timeout" \
          --test-reporter=tap "test/$(basename "$f")") > "$tmp/out" 2>&1 || rc=$?
        cat "$tmp/out" >> "$dir/$suite.log"
        [ "$rc" = 124 ] && printf 'TIMEOUT\t%s\n' "$(basename "$f")" >> "$dir/$suite.tsv"
        python3 "$here/tap.py" "$(basename "$f" .test.js)" < "$tmp/out" >> "$dir/$suite.tsv"
      done ;;
    pika)
      for f in "$out/pika-tests"/tests/acceptance/*_test*.py; do
        rc=0
        (cd "$out/pika-tests" && timeout -k 10 "$file_timeout" "$cache/venv/bin/python" -m pytest -p no:cacheprovider \
          -v --timeout "$test_timeout" -o timeout_method=signal "tests/acceptance/$(basename "$f")") > "$tmp/out" 2>&1 || rc=$?
        cat "$tmp/out" >> "$dir/$suite.log"
        [ "$rc" = 124 ] && printf 'TIMEOUT\t%s\n' "$(basename "$f")" >> "$dir/$suite.tsv"
        sed -n -E 's/^(tests\/acceptance\/[^ ]+::[^ ]+)( <- [^ ]+)? (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS).*/\3\t\1/p' "$tmp/out" \
          | sed -E 's/^PASSED|^XPASS/ok/; s/^FAILED|^ERROR/fail/; s/^SKIPPED|^XFAIL/skip/' >> "$dir/$suite.tsv"
      done ;;
    esac
  done
  exit 0
fi

# One compound command, read whole before it runs: editing this file during a run is harmless.
{
pika_dir="" amqplib_dir="" brokers="rabbitmq yard"
while [ $# -gt 0 ]; do
  case "$1" in
  --pika) pika_dir="$(cd "$2" && pwd)"; shift 2 ;;
  --amqplib) amqplib_dir="$(cd "$2" && pwd)"; shift 2 ;;
  --brokers) brokers="$2"; shift 2 ;;
  *) echo "usage: $0 [--pika DIR] [--amqplib DIR] [--brokers \"rabbitmq yard\"]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (unshare --net, apt-get)" >&2; exit 2; }
mkdir -p "$cache"

if [[ " $brokers " = *" rabbitmq "* ]] && ! command -v rabbitmq-server >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's init script from starting a system-wide node.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

suites=(amqplib-0.10)
if [ ! -x "$cache/amqplib-0.10/package/node_modules/.bin/mocha" ]; then
  rm -rf "$cache/amqplib-0.10" && mkdir -p "$cache/amqplib-0.10"
  (cd "$cache/amqplib-0.10" && npm pack --silent 'amqplib@0.10' >/dev/null && tar xzf amqplib-*.tgz && \
    cd package && npm install --silent --no-audit --no-fund --ignore-scripts >/dev/null)
fi
if [ -n "$pika_dir" ]; then
  version="$(sed -n -E "s/^__version__ = ['\"]([^'\"]+)['\"].*/\1/p" "$pika_dir/pika/__init__.py")"
  [ -n "$version" ] || { echo "no pika version in $pika_dir/pika/__init__.py" >&2; exit 2; }
  if ! "$cache/venv/bin/python" -c "import pika, sys; sys.exit(pika.__version__ != '$version')" 2>/dev/null; then
    rm -rf "$cache/venv" && python3 -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q "pika==$version" pytest pytest-timeout gevent tornado twisted
  fi
  # The tests only, so that `import pika` is the installed package.
  pika_tests=1
  suites+=(pika)
fi
if [ -n "$amqplib_dir" ]; then
  [ -d "$amqplib_dir/node_modules/claire" ] || \
    (cd "$amqplib_dir" && npm install --silent --no-audit --no-fund --ignore-scripts >/dev/null)
  export AMQPLIB_DIR="$amqplib_dir"
  suites+=(amqplib-repo)
fi

out="${SUITE_OUT:-$(mktemp -d)}"
mkdir -p "$out"
(cd "$root" && go build -o "$out/bin/yard" ./cmd/yard)
if [ -n "${pika_tests:-}" ]; then
  rm -rf "$out/pika-tests" && mkdir -p "$out/pika-tests"
  cp -r "$pika_dir/tests" "$pika_dir/testdata" "$pika_dir/pyproject.toml" "$out/pika-tests/"
fi
for b in $brokers; do
  echo "== $b: ${suites[*]} (results in $out/$b)"
  unshare --net bash "$0" __inner "$b" "$out" "${suites[@]}"
done
python3 "$here/compare.py" "$out" "${suites[@]}"
exit
}
