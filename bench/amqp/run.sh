#!/usr/bin/env bash
# Runs the AMQP benchmarks against yard and, as the baseline in the same run, against
# RabbitMQ (Debian's rabbitmq-server, installed if missing, started here as a throwaway node
# on a free port with its data in a temp dir, stopped afterwards).
#
# Then RabbitMQ's own PerfTest (perftest/pom.xml, resolved from Maven Central) runs the same
# shape against both: 1 producer with confirms (1000 outstanding), 1 consumer with manual
# acks, prefetch 100, 1 KiB transient messages; flat out, then at 5,000 msgs/s.
#
# Durable (issue 6): PerfTest with persistent messages on a durable queue (-f persistent, a
# named non-auto-delete queue), confirms (1000 outstanding), manual acks, prefetch 100, 1 KiB,
# with 1 producer / 1 consumer and 4 / 4; and this disk's sequential write bandwidth (dd with
# O_DIRECT, 1 MiB blocks), to say what fraction of it the durable rate is.
#
#	bash bench/amqp/run.sh [benchtime, default 100000x] [perftest seconds, default 15] [durable]
#
# With "durable" as the third argument only the durable comparison and the disk measurement run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
benchtime="${1:-100000x}"
seconds="${2:-15}"
only="${3:-}"
cache="${HOME}/.cache/yard-interop"
ptlib="$cache/perftest-lib"
if [ ! -f "$ptlib/.stamp" ] || [ "$root/bench/amqp/perftest/pom.xml" -nt "$ptlib/.stamp" ]; then
  rm -rf "$ptlib"
  (cd "$root/bench/amqp/perftest" && mvn -q -B -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies -DoutputDirectory="$ptlib")
  touch "$ptlib/.stamp"
fi
perftest() { # url, extra args
  local url="$1"; shift
  java -cp "$(ls "$ptlib"/*.jar | tr '\n' ':')" com.rabbitmq.perf.PerfTest -h "$url" -x 1 -y 1 -s 1024 -q 100 -c 1000 \
    -z "$seconds" "$@" 2>&1 | grep -E 'rate avg|latency min/'
}
durable() { # url, producers/consumers, extra args
  local url="$1" n="$2"; shift 2
  java -cp "$(ls "$ptlib"/*.jar | tr '\n' ':')" com.rabbitmq.perf.PerfTest -h "$url" -x "$n" -y "$n" -s 1024 -q 100 -c 1000 \
    -f persistent -u "bench-durable-$n-$RANDOM" -ad false -z "$seconds" "$@" 2>&1 | grep -E 'rate avg|latency min/'
}
durable_all() { # url
  echo "-- PerfTest, persistent + durable queue, 1 producer / 1 consumer"; durable "$1" 1
  echo "-- PerfTest, persistent + durable queue, 4 producers / 4 consumers"; durable "$1" 4
  echo "-- PerfTest, persistent + durable queue, 1 / 1 at 5,000 msgs/s (latency)"; durable "$1" 1 -r 5000
}

if ! command -v rabbitmq-server >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's init script from starting a system-wide node.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

base="$(mktemp -d)"
chmod 755 "$base"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
dist="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export RABBITMQ_NODENAME="yardbench$$@localhost" RABBITMQ_NODE_PORT="$port" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_DIST_PORT="$dist" RABBITMQ_MNESIA_BASE="$base/mnesia" RABBITMQ_LOG_BASE="$base/log" \
  RABBITMQ_CONFIG_FILE="$base/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
echo "[]." > "$base/enabled_plugins"
# Debian's wrappers run the node as the rabbitmq user.
chown -R rabbitmq: "$base" 2>/dev/null || true
rabbitmq-server > "$base/server.out" 2>&1 &
trap 'rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true; rm -rf "$base"' EXIT
for _ in $(seq 1 120); do
  if rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup >/dev/null 2>&1; then break; fi
  sleep 1
done
echo "== RabbitMQ $(rabbitmqctl -n "$RABBITMQ_NODENAME" version 2>/dev/null) on 127.0.0.1:$port (baseline)"
if [ "$only" != durable ]; then
  (cd "$root" && YARD_BENCH_AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" go test ./bench/amqp -run XXX -bench . -benchtime "$benchtime" -count 2)
  echo "-- PerfTest, flat out"; perftest "amqp://guest:guest@127.0.0.1:$port"
  echo "-- PerfTest, 5000 msgs/s"; perftest "amqp://guest:guest@127.0.0.1:$port" -r 5000
fi
durable_all "amqp://guest:guest@127.0.0.1:$port"
(cd "$root" && YARD_BENCH_AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" go test ./bench/amqp -run XXX -bench Durable -benchtime "$benchtime" -count 2)

echo "== yard"
if [ "$only" != durable ]; then
  (cd "$root" && go test ./bench/amqp -run XXX -bench . -benchtime "$benchtime" -count 2)
fi
(cd "$root" && go build -o "$base/yard" ./cmd/yard)
yport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$base/yard" serve --data-dir "$base/yard-data" --kafka-listen "" --http-listen "" --amqp-listen "127.0.0.1:$yport" --log-level warn &
ypid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$yport") 2>/dev/null && break; sleep 0.1; done
if [ "$only" != durable ]; then
  echo "-- PerfTest, flat out"; perftest "amqp://guest:guest@127.0.0.1:$yport"
  echo "-- PerfTest, 5000 msgs/s"; perftest "amqp://guest:guest@127.0.0.1:$yport" -r 5000
fi
durable_all "amqp://guest:guest@127.0.0.1:$yport"
(cd "$root" && go test ./bench/amqp -run XXX -bench Durable -benchtime "$benchtime" -count 2)
kill "$ypid"; wait "$ypid" || true

echo "== disk: sequential write bandwidth of the data dir's file system (O_DIRECT, 1 MiB blocks)"
dd if=/dev/zero of="$base/ddtest" bs=1M count=1024 oflag=direct 2>&1 | tail -1
echo "== disk: 4 KiB writes each followed by fdatasync (what a broker without group commit gets)"
dd if=/dev/zero of="$base/ddsync" bs=4k count=2000 oflag=dsync 2>&1 | tail -1
rm -f "$base/ddtest" "$base/ddsync"
