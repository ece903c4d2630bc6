#!/usr/bin/env bash
# Runs the AMQP benchmarks against yard and, as the baseline in the same run, against
# RabbitMQ (Debian's rabbitmq-server, installed if missing, started here as a throwaway node
# on a free port with its data in a temp dir, stopped afterwards). Both brokers run side by
# side and every comparison alternates between them, round after round, so that the noise of
# a shared machine falls on both alike.
#
# Transient (issue 5): the Go benchmark (amqp_bench_test.go) and RabbitMQ's own PerfTest
# (perftest/pom.xml, resolved from Maven Central): 1 producer with confirms (1000
# outstanding), 1 consumer with manual acks, prefetch 100, 1 KiB transient messages; flat out,
# then at 5,000 msgs/s.
#
# Durable (issue 6): PerfTest with persistent messages on a durable queue (-f persistent, a
# named non-auto-delete queue), confirms (1000 outstanding), manual acks, prefetch 100, 1 KiB:
#   - flat out, 1 producer / 1 consumer and 4 / 4;
#   - paced at 5,000 msgs/s (1 / 1), a rate both brokers sustain: the latency is the broker's;
#   - yard paced at five times the steady rate RabbitMQ reached flat out in the same round: the
#     latency yard gives at five times RabbitMQ's throughput;
# and this disk's sequential write bandwidth (dd with O_DIRECT, 1 MiB blocks), to say what
# fraction of it the durable rate is.
#
# Every PerfTest run also prints its steady receiving rate: the mean of its per-second rates
# after a warm-up (default 10 s). PerfTest's JVM interprets and compiles its hot paths in its
# first seconds, and until then it cannot drive a broker faster than about 20,000 msgs/s on
# this machine; its whole-run average mixes that ramp into the figure of any broker faster
# than that. Both brokers get the same treatment; the whole-run averages are printed too.
#
#	bash bench/amqp/run.sh [benchtime, default 100000x] [perftest seconds, default 30] [durable] [rounds, default 2] [warm-up seconds, default 10]
#
# With "durable" as the third argument only the durable comparison and the disk measurement run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
benchtime="${1:-100000x}"
seconds="${2:-30}"
only="${3:-}"
rounds="${4:-2}"
warmup="${5:-10}"
cache="${HOME}/.cache/yard-interop"
ptlib="$cache/perftest-lib"
if [ ! -f "$ptlib/.stamp" ] || [ "$root/bench/amqp/perftest/pom.xml" -nt "$ptlib/.stamp" ]; then
  rm -rf "$ptlib"
  (cd "$root/bench/amqp/perftest" && mvn -q -B -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies -DoutputDirectory="$ptlib")
  touch "$ptlib/.stamp"
fi
pt() { # url, producers/consumers, extra args: PerfTest's summary lines and its steady rate
  local url="$1" n="$2" out; shift 2
  out="$(java -cp "$(ls "$ptlib"/*.jar | tr '\n' ':')" com.rabbitmq.perf.PerfTest -h "$url" -x "$n" -y "$n" -s 1024 -q 100 -c 1000 \
    -z "$seconds" "$@" 2>&1)"
  echo "$out" | grep -E 'rate avg|latency min/'
  echo "$out" | awk -v w="$warmup" '/, time [0-9.]+ s, .*received: / {
      t = $0; sub(/.*, time /, "", t); sub(/ s,.*/, "", t)
      r = $0; sub(/.*received: /, "", r); sub(/ msg\/s.*/, "", r)
      if (t + 0 > w) { sum += r; n++ }
    }
    END { if (n) printf "steady receiving rate (after %d s of warm-up, %d s): %d msg/s\n", w, n, sum / n }'
}
perftest() { local url="$1"; shift; pt "$url" 1 "$@"; } # url, extra args: transient
durable() { # url, producers/consumers, extra args: persistent, on a named durable queue
  local url="$1" n="$2"; shift 2
  pt "$url" "$n" -f persistent -u "bench-durable-$n-$RANDOM" -ad false "$@"
}
received() { # pt's output -> the steady receiving rate, msgs/s
  sed -n 's/^steady receiving rate .*: \([0-9]*\) msg\/s$/\1/p' | tail -1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

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
port="$(free_port)"
dist="$(free_port)"
export RABBITMQ_NODENAME="yardbench$$@localhost" RABBITMQ_NODE_PORT="$port" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_DIST_PORT="$dist" RABBITMQ_MNESIA_BASE="$base/mnesia" RABBITMQ_LOG_BASE="$base/log" \
  RABBITMQ_CONFIG_FILE="$base/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
echo "[]." > "$base/enabled_plugins"
# Debian's wrappers run the node as the rabbitmq user.
chown -R rabbitmq: "$base" 2>/dev/null || true
rabbitmq-server > "$base/server.out" 2>&1 &
ypid=""
cleanup() {
  rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
  if [ -n "$ypid" ]; then kill "$ypid" 2>/dev/null; wait "$ypid" 2>/dev/null || true; fi
  rm -rf "$base"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  if rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup >/dev/null 2>&1; then break; fi
  sleep 1
done
rabbit="amqp://guest:guest@127.0.0.1:$port"
echo "== RabbitMQ $(rabbitmqctl -n "$RABBITMQ_NODENAME" version 2>/dev/null) on 127.0.0.1:$port (baseline)"

(cd "$root" && go build -o "$base/yard" ./cmd/yard)
yport="$(free_port)"
"$base/yard" serve --data-dir "$base/yard-data" --kafka-listen "" --http-listen "" --amqp-listen "127.0.0.1:$yport" --log-level warn &
ypid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$yport") 2>/dev/null && break; sleep 0.1; done
yard="amqp://guest:guest@127.0.0.1:$yport"
echo "== yard $("$base/yard" version 2>/dev/null | head -1) on 127.0.0.1:$yport"

if [ "$only" != durable ]; then
  echo "== Go benchmark, transient: RabbitMQ, then yard (a yard of its own, started by the test)"
  (cd "$root" && YARD_BENCH_AMQP_URL="$rabbit/" go test ./bench/amqp -run XXX -bench 'Benchmark(Confirmed|Latency)' -benchtime "$benchtime" -count 2)
  (cd "$root" && go test ./bench/amqp -run XXX -bench 'Benchmark(Confirmed|Latency)' -benchtime "$benchtime" -count 2)
  for broker in RabbitMQ yard; do
    url="$rabbit"; [ "$broker" = yard ] && url="$yard"
    echo "-- $broker: PerfTest, transient, flat out"; perftest "$url"
    echo "-- $broker: PerfTest, transient, 5000 msgs/s"; perftest "$url" -r 5000
  done
fi

for round in $(seq 1 "$rounds"); do
  echo "== durable, round $round of $rounds"
  echo "-- RabbitMQ: persistent + durable queue, 1 producer / 1 consumer, flat out"
  out="$(durable "$rabbit" 1)"; echo "$out"; rabbit1="$(echo "$out" | received)"
  echo "-- yard: persistent + durable queue, 1 producer / 1 consumer, flat out"; durable "$yard" 1
  echo "-- RabbitMQ: persistent + durable queue, 4 producers / 4 consumers, flat out"
  out="$(durable "$rabbit" 4)"; echo "$out"; rabbit4="$(echo "$out" | received)"
  echo "-- yard: persistent + durable queue, 4 producers / 4 consumers, flat out"; durable "$yard" 4
  echo "-- RabbitMQ: 1 / 1 at 5,000 msgs/s"; durable "$rabbit" 1 -r 5000
  echo "-- yard: 1 / 1 at 5,000 msgs/s"; durable "$yard" 1 -r 5000
  # -r is per producer.
  echo "-- yard: 1 / 1 at 5 x RabbitMQ's 1/1 rate of this round ($((5 * rabbit1)) msgs/s)"
  durable "$yard" 1 -r $((5 * rabbit1))
  echo "-- yard: 4 / 4 at 5 x RabbitMQ's 4/4 rate of this round ($((5 * rabbit4)) msgs/s in all)"
  durable "$yard" 4 -r $((5 * rabbit4 / 4))
done
echo "== Go benchmark, durable: RabbitMQ, then yard (a yard of its own, started by the test)"
(cd "$root" && YARD_BENCH_AMQP_URL="$rabbit/" go test ./bench/amqp -run XXX -bench Durable -benchtime "$benchtime" -count 2)
(cd "$root" && go test ./bench/amqp -run XXX -bench Durable -benchtime "$benchtime" -count 2)

echo "== disk: sequential write bandwidth of the data dir's file system (O_DIRECT, 1 MiB blocks)"
dd if=/dev/zero of="$base/ddtest" bs=1M count=1024 oflag=direct 2>&1 | tail -1
echo "== disk: 4 KiB writes each followed by fdatasync (what a broker without group commit gets)"
dd if=/dev/zero of="$base/ddsync" bs=4k count=2000 oflag=dsync 2>&1 | tail -1
rm -f "$base/ddtest" "$base/ddsync"
