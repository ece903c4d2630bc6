#!/usr/bin/env bash
# Runs segmentio/kafka-go's own test suite (every package of the kafka-go version in go.mod)
# against yard and against Apache Kafka 4.4, set up as kafka-go's own CI sets up Kafka 4.0
# (docker_compose_versions/docker-compose-400.yml), and prints pass/fail/skip counts per broker
# and the tests that pass on Kafka but fail on yard.
#
#	bash test/interop/kafka/suites/kafka-go.sh [--brokers "kafka yard"] [--run REGEX] [--pkgs PATTERN]
#
# kafka-go's tests connect to localhost:9092 (PLAINTEXT) and localhost:9093 (SASL_PLAINTEXT:
# PLAIN for adminplain/admin-secret, SCRAM-SHA-256 for adminscram256/admin-secret-256,
# SCRAM-SHA-512 for adminscram512/admin-secret-512), whatever the environment says. So each
# broker runs in a network namespace of its own (unshare --net, root), listening on 9092 and
# 9093 there, with the tests run inside it: no port of the machine is taken. The environment
# is kafka-go's CI's: KAFKA_VERSION=4.0.0 (SUITE_KAFKA_VERSION; tests of features a 4.0 broker lacks skip
# themselves), KAFKA_SKIP_NETTEST=1. Both brokers as in that compose file: topics auto-created,
# message.max.bytes 200000000, an ACL authorizer that lets everyone do what no ACL forbids
# (yard: --kafka-authorizer acl with the anonymous and SASL users as super users, which is what
# allow.everyone.if.no.acl.found=true gives with no ACL that denies), the SASL users above.
# Kafka 4.4 comes from Maven Central through bench/kafka/broker.sh's jars, with its own
# server.properties (below); yard is built from this tree with a fresh data dir.
#
# Skipped (SUITE_SKIP, go test -skip): TestReaderConsumerGroup's subtests that read committed
# offsets through the suite's getOffsets helper, which calls a ConsumerGroup whose unexported
# connect function it never sets: a nil function call that panics and ends the whole package
# on any broker (Kafka too), so that the package's remaining tests would never run.
# Tests run with go test -v -p 1 (one package at a time), without -race (kafka-go's Makefile
# adds it; it only slows the comparison), -timeout SUITE_PKG_TIMEOUT (default 20m) per package.
# Counts are of top-level tests. Results go to $SUITE_OUT (default a temp dir, printed):
# <broker>.log, <broker>.tsv (status, test).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
cache="${HOME}/.cache/yard-interop/suites/kafka-go"
pkg_timeout="${SUITE_PKG_TIMEOUT:-20m}"
skip="${SUITE_SKIP:-TestReaderConsumerGroup/(verify_offset_committed|consumer_group_commits_on_close)}"

if [ "${1:-}" = __inner ]; then
  broker="$2" out="$3" src="$4" run="$5" pkgs="$6"
  ip link set lo up
  tmp="$(mktemp -d)"
  bpid=""
  stop() {
    if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; fi
    rm -rf "$tmp"
  }
  trap stop EXIT
  case "$broker" in
    yard)
      for u in adminplain:admin-secret adminscram256:admin-secret-256 adminscram512:admin-secret-512; do
        "$cache/yard" users add "${u%%:*}" --password "${u#*:}" --data-dir "$tmp/data" >/dev/null
      done
      "$cache/yard" serve --data-dir "$tmp/data" --kafka-listen "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093" \
        --kafka-advertised-host localhost --amqp-listen "" --http-listen "" \
        --kafka-authorizer acl --super-users "User:ANONYMOUS,User:adminplain,User:adminscram256,User:adminscram512" \
        --kafka-max-request-bytes 209715200 > "$out/yard.server.log" 2>&1 &
      bpid=$!
      ;;
    kafka)
      cp="$(bash "$root/bench/kafka/broker.sh" classpath)"
      cat > "$tmp/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9094
listeners=PLAIN://:9092,SASL://:9093,CONTROLLER://127.0.0.1:9094
advertised.listeners=PLAIN://localhost:9092,SASL://localhost:9093
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAIN
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAIN:PLAINTEXT,SASL:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_adminplain="admin-secret";
listener.name.sasl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
super.users=User:ANONYMOUS;User:adminscram256;User:adminscram512;User:adminplain
auto.create.topics.enable=true
delete.topic.enable=true
message.max.bytes=200000000
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.dirs=$tmp/logs
EOF
      java -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
        -c "$tmp/server.properties" \
        --add-scram 'SCRAM-SHA-256=[name=adminscram256,password=admin-secret-256]' \
        --add-scram 'SCRAM-SHA-512=[name=adminscram512,password=admin-secret-512]' > "$out/kafka.format.log" 2>&1
      java -Xmx1G -Xms1G -XX:+UseG1GC -cp "$cp" kafka.Kafka "$tmp/server.properties" > "$out/kafka.server.log" 2>&1 &
      bpid=$!
      ;;
  esac
  for _ in $(seq 1 900); do
    if (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/9093) 2>/dev/null; then break; fi
    kill -0 "$bpid" 2>/dev/null || { echo "kafka-go.sh: $broker exited while starting" >&2; exit 1; }
    sleep 0.2
  done
  sleep 2 # the broker's metadata (KRaft) settles after the listeners open
  (cd "$src" && GOFLAGS=-mod=mod KAFKA_VERSION="${SUITE_KAFKA_VERSION:-4.0.0}" KAFKA_SKIP_NETTEST=1 go test -v -p 1 -count=1 -timeout "$pkg_timeout" -run "$run" -skip "$skip" $pkgs) \
    > "$out/$broker.log" 2>&1 || true
  exit 0
fi

brokers="kafka yard" run=. pkgs=./...
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) brokers="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    --pkgs) pkgs="$2"; shift 2 ;;
    *) echo "usage: $0 [--brokers \"kafka yard\"] [--run REGEX] [--pkgs PATTERN]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "kafka-go.sh: needs root (unshare --net)" >&2; exit 1; }
out="${SUITE_OUT:-$(mktemp -d)}"
mkdir -p "$out" "$cache"
ver="$(cd "$root" && go list -m -f '{{.Version}}' github.com/segmentio/kafka-go)"
src="$cache/$ver"
if [ ! -f "$src/go.mod" ]; then
  moddir="$(cd "$root" && go mod download -json "github.com/segmentio/kafka-go@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -f "$moddir/go.mod" ] || { echo "kafka-go.sh: cannot find kafka-go $ver in the module cache" >&2; exit 1; }
  rm -rf "$src.tmp" && cp -r "$moddir" "$src.tmp" && chmod -R u+w "$src.tmp" && mv "$src.tmp" "$src"
fi
echo "kafka-go.sh: compiling kafka-go $ver's tests" >&2
(cd "$src" && GOFLAGS=-mod=mod go test -count=1 -run "^$" ./... >/dev/null) # compiled here, with the network; cached for the runs
for broker in $brokers; do
  case "$broker" in
    yard) (cd "$root" && go build -o "$cache/yard" ./cmd/yard) ;;
    kafka) bash "$root/bench/kafka/broker.sh" install ;;
    *) echo "kafka-go.sh: unknown broker $broker" >&2; exit 2 ;;
  esac
  echo "kafka-go.sh: running kafka-go $ver's tests against $broker" >&2
  unshare --net bash "$0" __inner "$broker" "$out" "$src" "$run" "$pkgs"
  sed -n 's/^--- \(PASS\|FAIL\|SKIP\): \([^ ]*\).*/\1\t\2/p' "$out/$broker.log" > "$out/$broker.tsv"
  p=$(grep -c '^PASS' "$out/$broker.tsv" || true); f=$(grep -c '^FAIL' "$out/$broker.tsv" || true); s=$(grep -c '^SKIP' "$out/$broker.tsv" || true)
  echo "$broker: $p passed, $f failed, $s skipped of $((p + f + s)) top-level tests"
done
if [ -f "$out/kafka.tsv" ] && [ -f "$out/yard.tsv" ]; then
  echo "pass on Kafka, not on yard:"
  comm -23 <(sed -n 's/^PASS\t//p' "$out/kafka.tsv" | sort -u) <(sed -n 's/^PASS\t//p' "$out/yard.tsv" | sort -u) | sed 's/^/  /'
  echo "pass on yard, not on Kafka:"
  comm -13 <(sed -n 's/^PASS\t//p' "$out/kafka.tsv" | sort -u) <(sed -n 's/^PASS\t//p' "$out/yard.tsv" | sort -u) | sed 's/^/  /'
fi
echo "results in $out"
