#!/usr/bin/env bash
# Runs confluent-kafka-python's integration tests against yard and against Apache Kafka 4.4
# (bench/kafka/broker.sh), and prints pass/fail/skip counts per broker and the tests that pass
# on Kafka but fail on yard.
#
#	bash test/interop/kafka/suites/confluent-kafka-python.sh --src DIR [--brokers "kafka yard"]
#	     [--version V]
#
# DIR is a checkout of confluent-kafka-python's repository at the tag of version V (default
# 2.15.0; no registry package ships tests/); only its tests/ is used, against confluent-kafka V
# (librdkafka inside its wheel) installed from PyPI, with pytest and the tests' own imports
# (trivup, avro, the schema-registry extras), into a venv under
# ~/.cache/yard-interop/suites/confluent-kafka-python.
#
# The tests take the broker from BROKERS (an existing cluster: their ByoFixture). Run:
# tests/integration/{admin,consumer,producer,serialization} and integration_test.py, each test
# under pytest-timeout (SUITE_TEST_TIMEOUT, default 300 s). Not run, with the reason:
# schema_registry (needs a Schema Registry), share_consumer* (KIP-932 share groups, which
# yard does not serve; the _sasl and _oauth variants also start their own trivup clusters),
# test_describe_operations[sasl_cluster0] (starts its own trivup SASL cluster, a Kafka it
# downloads). Both brokers run an ACL authorizer under which the anonymous user is a super
# user (the tests create, list and delete ACLs): Kafka's StandardAuthorizer, yard's
# --kafka-authorizer acl. Kafka is started by bench/kafka/broker.sh, whose server.properties
# sets log.segment.bytes: test_incremental_alter_configs then sees segment.bytes as a
# non-default config (STATIC_BROKER_CONFIG) that it does not expect, on Kafka only.
# Results go to $SUITE_OUT (default a temp dir, printed): <broker>.log, <broker>.tsv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cache="${HOME}/.cache/yard-interop/suites/confluent-kafka-python"
test_timeout="${SUITE_TEST_TIMEOUT:-300}"
brokers="kafka yard" version=2.15.0 srcdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --src) srcdir="$(cd "$2" && pwd)"; shift 2 ;;
    --brokers) brokers="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    *) echo "usage: $0 --src DIR [--brokers \"kafka yard\"] [--version V]" >&2; exit 2 ;;
  esac
done
[ -d "$srcdir/tests/integration" ] || { echo "confluent-kafka-python.sh: --src DIR must hold tests/integration" >&2; exit 2; }
out="${SUITE_OUT:-$(mktemp -d)}"
mkdir -p "$out" "$cache"
venv="$cache/venv-$version"
if ! "$venv/bin/python" -c 'import confluent_kafka, pytest, trivup, avro' >/dev/null 2>&1; then
  echo "confluent-kafka-python.sh: installing confluent-kafka $version and the tests' packages into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "confluent-kafka[schemaregistry,avro]==$version" \
    pytest pytest-timeout pytest-asyncio async-timeout trivup requests >&2
fi
work="$(mktemp -d)"
cp -r "$srcdir/tests" "$work/tests"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ypid="" kdata=""
cleanup() {
  if [ -n "$ypid" ]; then kill "$ypid" 2>/dev/null || true; wait "$ypid" 2>/dev/null || true; fi
  if [ -n "$kdata" ]; then bash "$root/bench/kafka/broker.sh" stop --data-dir "$kdata" >/dev/null 2>&1 || true; fi
  rm -rf "$work" "${kdata:-}" "${ydata:-}"
}
trap cleanup EXIT

for broker in $brokers; do
  case "$broker" in
    yard)
      (cd "$root" && go build -o "$cache/yard" ./cmd/yard)
      port="$(free_port)" ydata="$(mktemp -d)"
      "$cache/yard" serve --data-dir "$ydata" --kafka-listen "127.0.0.1:$port" --amqp-listen "" \
        --http-listen "" --kafka-authorizer acl --super-users User:ANONYMOUS > "$out/yard.server.log" 2>&1 &
      ypid=$!
      for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
      seeds="127.0.0.1:$port"
      ;;
    kafka)
      kdata="$(mktemp -d)"
      seeds="$(bash "$root/bench/kafka/broker.sh" start --data-dir "$kdata" \
        --set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer \
        --set allow.everyone.if.no.acl.found=true --set super.users=User:ANONYMOUS | sed -n 's/^KAFKA_BOOTSTRAP=//p')"
      ;;
    *) echo "confluent-kafka-python.sh: unknown broker $broker" >&2; exit 2 ;;
  esac
  echo "confluent-kafka-python.sh: running confluent-kafka-python $version's integration tests against $broker at $seeds" >&2
  (cd "$work" && BROKERS="$seeds" "$venv/bin/python" -m pytest -p no:cacheprovider -rA --timeout "$test_timeout" \
    tests/integration/admin tests/integration/consumer tests/integration/producer \
    tests/integration/serialization tests/integration/integration_test.py \
    --deselect 'tests/integration/admin/test_describe_operations.py::test_describe_operations[sasl_cluster0]' \
    > "$out/$broker.log" 2>&1) || true
  sed -n 's/^\(PASSED\|FAILED\|ERROR\|SKIPPED\|XFAIL\|XPASS\) \([^ ]*\).*/\1\t\2/p' "$out/$broker.log" | sort -u -k2 > "$out/$broker.tsv"
  p=$(grep -c '^PASSED' "$out/$broker.tsv" || true); f=$(grep -c '^\(FAILED\|ERROR\)' "$out/$broker.tsv" || true); s=$(grep -c '^SKIPPED' "$out/$broker.tsv" || true)
  echo "$broker: $p passed, $f failed or errored, $s skipped"
  grep '^\(FAILED\|ERROR\)' "$out/$broker.tsv" | sed 's/^/  /' || true
  if [ "$broker" = yard ]; then kill "$ypid"; wait "$ypid" 2>/dev/null || true; ypid=""; fi
  if [ "$broker" = kafka ]; then bash "$root/bench/kafka/broker.sh" stop --data-dir "$kdata" >/dev/null 2>&1 || true; rm -rf "$kdata"; kdata=""; fi
done
if [ -f "$out/kafka.tsv" ] && [ -f "$out/yard.tsv" ]; then
  echo "pass on Kafka, not on yard:"
  comm -23 <(sed -n 's/^PASSED\t//p' "$out/kafka.tsv" | sort -u) <(sed -n 's/^PASSED\t//p' "$out/yard.tsv" | sort -u) | sed 's/^/  /'
fi
echo "results in $out"
