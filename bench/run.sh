#!/usr/bin/env bash
# yard side by side with Apache Kafka 4.4, RabbitMQ and NATS JetStream, on this machine, in
# one run (issue 19). Each broker is started on loopback, the same workloads run against it,
# it is stopped; the page cache is synced and dropped before every run (as root). Each
# broker first gets an unreported warm-up run (a JVM's first seconds run interpreted code).
#
#   bench/run.sh [--quick] [--only kafka,amqp,nats] [--brokers yard,kafka,...] [--duration S] [--out DIR]
#
# Brokers: yard, kafka, kafka-durable, rabbitmq, nats, nats-durable (the default set), and
# yard-journal: yard with --kafka-journal, Kafka protocol only (--brokers yard,yard-journal
# compares the two in one run).
#
# Kafka protocol (yard, Kafka as shipped, Kafka with log.flush.interval.messages=1), 1 KiB
# records, 6 partitions:
#   franz-go (bench/driver): flat out with acks=all and acks=1, each with lz4 and without
#   compression; acks=all at fixed 10k, 50k (also with lz4) and 100k records/s; produce-to-ack and end-to-end
#   latency, per second;
#   Kafka's own tools (kafka-tools 4.4): ProducerPerformance flat out and at 50k records/s (its
#   figures from the records after the first ${warm} s, --warmup-records: the JVM's warm-up),
#   ConsumerPerformance reading the flat-out topic, EndToEndLatency (one record at a time).
# AMQP 0-9-1 (yard, RabbitMQ from Debian), 1 KiB, confirms, manual acks, prefetch 100:
#   amqp091-go (bench/driver): transient and persistent, 1/1 and 4/4 producers/consumers flat
#   out; persistent at a fixed 10k msgs/s, 1/1 and 4/4;
#   PerfTest: persistent, 1/1 and 4/4 flat out (steady rate after a warm-up).
# NATS JetStream (nats-server 2.15.3 as shipped, and with sync_interval: always), the Kafka
# workloads that map onto it: one file-backed stream, async publish with acks, an ordered
# consumer; flat out and at 10k, 50k and 100k records/s.
#
# Writes bench/out/<UTC time>/: results/*.json (one per broker, tool and workload), logs/,
# machine.txt, results.md (tables, goals, brokers' fsync behaviour, peak RSS, CPU s per
# million records) and PNG charts. --quick is a smoke version of a few minutes (short runs, a
# subset of the workloads). The full run takes about 30 minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
quick="" only="kafka,amqp,nats" brokers="yard,kafka,kafka-durable,rabbitmq,nats,nats-durable" duration="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --only) only="$2"; shift 2 ;;
    --brokers) brokers="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
broker_on() { [[ ",$brokers," == *",$1,"* ]]; }
if [ -n "$quick" ]; then
  dur="${duration:-5}" warm=1 warmrun=2 ptsec=12 ptwarm=6 ppn=300000 e2en=300
else
  dur="${duration:-15}" warm=3 warmrun=10 ptsec=30 ptwarm=10 ppn=3000000 e2en=1000
fi
out="${out:-$root/bench/out/$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out/results" "$out/logs"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/yard-bench.XXXXXX)"
bin="$work/bin"
mkdir -p "$bin"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${kafka_dir:-}" ] && "$root/bench/kafka/broker.sh" stop --data-dir "$kafka_dir" >/dev/null 2>&1 || true
  [ -n "${RABBITMQ_NODENAME:-}" ] && rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$out/logs/run.log" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
dropcache() {
  sync
  if ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    [ -n "${warned_drop:-}" ] || { log "cannot drop the page cache (needs root): runs start with a warm cache"; warned_drop=1; }
  fi
}
note_load() { echo "load average before $1 ($(date -u +%H:%M) UTC): $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"; }
slug() { echo "$*" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//'; }
stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }

log "building yard, the drivers and the report into $bin"
(cd "$root" && go build -o "$bin/yard" ./cmd/yard && go build -o "$bin/driver" ./bench/driver)
(cd "$root/bench/report" && go build -o "$bin/report" .)
if want nats; then
  (cd "$root/bench/nats" && go build -o "$bin/natsdriver" . && go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2)
fi
driver="$bin/driver"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
  echo "disk: $(df -h "$work" | awk 'NR==2 {print $1", "$2}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "yard: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)')"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "go: $(go version | cut -d' ' -f3)"
  echo "mode: $([ -n "$quick" ] && echo quick || echo full), ${dur} s per run, the first ${warm} s left out"
} > "$out/machine.txt"

# ---------------------------------------------------------------------------------------
# Kafka protocol
# ---------------------------------------------------------------------------------------
franz() { # broker bootstrap pid workload args...
  local b="$1" boot="$2" pid="$3" w="$4"; shift 4
  dropcache
  log "$b: franz-go, $w"
  "$driver" kafka -broker "$b" -workload "$w" -brokers "$boot" -pid "$pid" -duration "${dur}s" -warmup "${warm}s" \
    -out "$out/results/kafka-franz-go-$b-$(slug "$w").json" "$@" 2>>"$out/logs/$b-franz-go.log" ||
    log "$b: franz-go $w failed (see logs/$b-franz-go.log)"
}
kafka_tools() { # broker bootstrap pid
  local b="$1" boot="$2" pid="$3" cp t
  cp="$("$root/bench/kafka/broker.sh" classpath)"
  local wrap=("$driver" wrap -broker "$b" -pid "$pid" -protocol kafka)
  t="pp-flat-$RANDOM"
  "$driver" topic -brokers "$boot" -create "$t" -partitions 6
  dropcache
  log "$b: ProducerPerformance, flat out ($ppn records at most, ${dur} s)"
  "${wrap[@]}" -tool ProducerPerformance -workload "flat acks=all none" -acks all -compression none -producers 1 \
    -timeout "$((dur + 15))s" -log "$out/logs/$b-pp-flat.log" -out "$out/results/kafka-pp-$b-flat.json" -- \
    java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$boot" --topic "$t" \
    --num-records "$ppn" --record-size 1024 --throughput -1 --reporting-interval 1000 \
    --command-property acks=all compression.type=none || log "$b: ProducerPerformance failed"
  dropcache
  log "$b: ConsumerPerformance, reading the flat-out topic"
  "${wrap[@]}" -tool ConsumerPerformance -workload "consume the flat-out topic" -consumers 1 -timeout 120s \
    -log "$out/logs/$b-cp.log" -out "$out/results/kafka-cp-$b.json" -- \
    java -cp "$cp" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$boot" --topic "$t" \
    --num-records "$ppn" --timeout 15000 --group "cp-$RANDOM" || log "$b: ConsumerPerformance failed"
  "$driver" topic -brokers "$boot" -delete "$t" || true
  t="pp-50k-$RANDOM"
  "$driver" topic -brokers "$boot" -create "$t" -partitions 6
  dropcache
  log "$b: ProducerPerformance, 50k records/s"
  "${wrap[@]}" -tool ProducerPerformance -workload "50k acks=all none" -rate 50000 -acks all -compression none -producers 1 \
    -timeout "$((dur + 30))s" -log "$out/logs/$b-pp-50k.log" -out "$out/results/kafka-pp-$b-50k.json" -- \
    java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --bootstrap-server "$boot" --topic "$t" \
    --num-records "$((50000 * dur))" --warmup-records "$((50000 * warm))" --record-size 1024 --throughput 50000 --reporting-interval 1000 \
    --command-property acks=all compression.type=none || log "$b: ProducerPerformance failed"
  "$driver" topic -brokers "$boot" -delete "$t" || true
  t="e2e-$RANDOM"
  "$driver" topic -brokers "$boot" -create "$t" -partitions 1
  dropcache
  log "$b: EndToEndLatency, $e2en records one at a time"
  "${wrap[@]}" -tool EndToEndLatency -workload "one at a time acks=all" -acks all -producers 1 -consumers 1 -timeout 180s \
    -log "$out/logs/$b-e2e.log" -out "$out/results/kafka-e2e-$b.json" -- \
    java -cp "$cp" org.apache.kafka.tools.EndToEndLatency --bootstrap-server "$boot" --topic "$t" \
    --num-records "$e2en" --producer-acks all --record-size 1024 || log "$b: EndToEndLatency failed"
  "$driver" topic -brokers "$boot" -delete "$t" || true
}
kafka_workloads() { # broker bootstrap pid
  local b="$1" boot="$2" pid="$3"
  note_load "$b (Kafka protocol)"
  # Unreported: a JVM broker's first seconds run interpreted code; every broker gets the same.
  log "$b: warm-up run, ${warmrun} s, not reported"
  "$driver" kafka -broker "$b" -brokers "$boot" -duration "${warmrun}s" -warmup 1s -out /dev/null 2>>"$out/logs/$b-franz-go.log" || true
  franz "$b" "$boot" "$pid" "flat acks=all none" -acks all -compression none
  franz "$b" "$boot" "$pid" "50k acks=all none" -rate 50000 -acks all -compression none
  if [ -z "$quick" ]; then
    franz "$b" "$boot" "$pid" "50k acks=all lz4" -rate 50000 -acks all -compression lz4
    franz "$b" "$boot" "$pid" "flat acks=all lz4" -acks all -compression lz4
    franz "$b" "$boot" "$pid" "flat acks=1 none" -acks 1 -compression none
    franz "$b" "$boot" "$pid" "flat acks=1 lz4" -acks 1 -compression lz4
    franz "$b" "$boot" "$pid" "10k acks=all none" -rate 10000 -acks all -compression none
    franz "$b" "$boot" "$pid" "100k acks=all none" -rate 100000 -acks all -compression none
  fi
  kafka_tools "$b" "$boot" "$pid"
}
start_yard() { # protocol [extra yard flags...] -> sets ypid, yaddr
  local port
  port="$(free_port)"
  rm -rf "$work/yard-data"
  local args=(--kafka-listen "" --amqp-listen "")
  [ "$1" = kafka ] && args=(--kafka-listen "127.0.0.1:$port" --amqp-listen "")
  [ "$1" = amqp ] && args=(--kafka-listen "" --amqp-listen "127.0.0.1:$port")
  "$bin/yard" serve --data-dir "$work/yard-data" "${args[@]}" "${@:2}" --http-listen "" --log-level warn \
    > "$out/logs/yard-$1$([ $# -gt 1 ] && echo -journal).out" 2>&1 &
  ypid=$!
  pids+=("$ypid")
  wait_port "$port" || { log "yard did not start"; exit 1; }
  yaddr="127.0.0.1:$port"
}

if want kafka; then
  for yv in yard yard-journal; do
    broker_on "$yv" || continue
    yflags=()
    [ "$yv" = yard-journal ] && yflags=(--kafka-journal)
    start_yard kafka "${yflags[@]}"
    log "$yv $("$bin/yard" version 2>/dev/null | head -1) (Kafka protocol${yflags:+, ${yflags[*]}}) on $yaddr, pid $ypid"
    kafka_workloads "$yv" "$yaddr" "$ypid"
    stop_pid "$ypid"; rm -rf "$work/yard-data"
  done
  for variant in kafka kafka-durable; do
    broker_on "$variant" || continue
    kafka_dir="$work/$variant"
    flags=()
    [ "$variant" = kafka-durable ] && flags=(--durable)
    env="$("$root/bench/kafka/broker.sh" start --data-dir "$kafka_dir" "${flags[@]}")"
    boot="$(echo "$env" | sed -n 's/^KAFKA_BOOTSTRAP=//p')"
    kpid="$(echo "$env" | sed -n 's/^KAFKA_PID=//p')"
    log "Apache Kafka 4.4.0 ($variant) on $boot, pid $kpid"
    kafka_workloads "$variant" "$boot" "$kpid"
    "$root/bench/kafka/broker.sh" stop --data-dir "$kafka_dir"
    cp "$kafka_dir/server.properties" "$out/logs/$variant-server.properties"
    rm -rf "$kafka_dir"; kafka_dir=""
  done
  echo "kafka: Apache Kafka 4.4.0 (kafka_2.13 from Maven Central), single-node KRaft, -Xmx1G, kafka-server-start.sh's JVM options" >> "$out/machine.txt"
fi

# ---------------------------------------------------------------------------------------
# AMQP 0-9-1
# ---------------------------------------------------------------------------------------
amqp_go() { # broker url pid workload args...
  local b="$1" url="$2" pid="$3" w="$4"; shift 4
  dropcache
  log "$b: amqp091-go, $w"
  "$driver" amqp -broker "$b" -workload "$w" -url "$url" -pid "$pid" -duration "${dur}s" -warmup "${warm}s" \
    -out "$out/results/amqp-amqp091-go-$b-$(slug "$w").json" "$@" 2>>"$out/logs/$b-amqp091-go.log" ||
    log "$b: amqp091-go $w failed (see logs/$b-amqp091-go.log)"
}
perftest() { # broker url pid n
  local b="$1" url="$2" pid="$3" n="$4" cp
  cp="$(ls "$ptlib"/*.jar | tr '\n' ':')"
  dropcache
  log "$b: PerfTest, persistent, $n/$n flat out (${ptsec} s, steady rate after ${ptwarm} s)"
  "$driver" wrap -broker "$b" -pid "$pid" -protocol amqp -tool PerfTest -workload "flat persistent $n/$n" \
    -persistent -producers "$n" -consumers "$n" -warmup "${ptwarm}s" -duration "${ptsec}s" -timeout "$((ptsec + 60))s" \
    -log "$out/logs/$b-perftest-$n.log" -out "$out/results/amqp-perftest-$b-$n-$n.json" -- \
    java -cp "$cp" com.rabbitmq.perf.PerfTest -h "${url%/}" -x "$n" -y "$n" -s 1024 -q 100 -c 1000 -z "$ptsec" \
    -f persistent -u "perftest-$n-$RANDOM" -ad false || log "$b: PerfTest failed"
}
amqp_workloads() { # broker url pid
  local b="$1" url="$2" pid="$3"
  note_load "$b (AMQP)"
  log "$b: warm-up run, ${warmrun} s, not reported"
  "$driver" amqp -broker "$b" -url "$url" -duration "${warmrun}s" -warmup 1s -out /dev/null 2>>"$out/logs/$b-amqp091-go.log" || true
  amqp_go "$b" "$url" "$pid" "flat persistent 1/1" -persistent -producers 1 -consumers 1
  amqp_go "$b" "$url" "$pid" "flat persistent 4/4" -persistent -producers 4 -consumers 4
  if [ -z "$quick" ]; then
    amqp_go "$b" "$url" "$pid" "flat transient 1/1" -persistent=false -producers 1 -consumers 1
    amqp_go "$b" "$url" "$pid" "flat transient 4/4" -persistent=false -producers 4 -consumers 4
    amqp_go "$b" "$url" "$pid" "10k persistent 1/1" -rate 10000 -persistent -producers 1 -consumers 1
    amqp_go "$b" "$url" "$pid" "10k persistent 4/4" -rate 10000 -persistent -producers 4 -consumers 4
  fi
  perftest "$b" "$url" "$pid" 1
  perftest "$b" "$url" "$pid" 4
}

if want amqp; then
  cache="${HOME}/.cache/yard-interop"
  ptlib="$cache/perftest-lib"
  if [ ! -f "$ptlib/.stamp" ] || [ "$root/bench/amqp/perftest/pom.xml" -nt "$ptlib/.stamp" ]; then
    rm -rf "$ptlib"
    (cd "$root/bench/amqp/perftest" && mvn -q -B -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies -DoutputDirectory="$ptlib")
    touch "$ptlib/.stamp"
  fi
  if broker_on yard; then
    start_yard amqp
    log "yard (AMQP) on $yaddr, pid $ypid"
    amqp_workloads yard "amqp://guest:guest@$yaddr/" "$ypid"
    stop_pid "$ypid"; rm -rf "$work/yard-data"
  fi
  if broker_on rabbitmq; then
    if ! command -v rabbitmq-server >/dev/null; then
      log "installing rabbitmq-server (Debian)"
      export DEBIAN_FRONTEND=noninteractive
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
      rm -f /usr/sbin/policy-rc.d
    fi
    rbase="$work/rabbitmq"
    mkdir -p "$rbase" && chmod 755 "$work" "$rbase"
    rport="$(free_port)"
    export RABBITMQ_NODENAME="yardbench$$@localhost" RABBITMQ_NODE_PORT="$rport" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
      RABBITMQ_DIST_PORT="$(free_port)" RABBITMQ_MNESIA_BASE="$rbase/mnesia" RABBITMQ_LOG_BASE="$rbase/log" \
      RABBITMQ_CONFIG_FILE="$rbase/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$rbase/enabled_plugins"
    echo "[]." > "$rbase/enabled_plugins"
    chown -R rabbitmq: "$rbase" 2>/dev/null || true
    rabbitmq-server > "$out/logs/rabbitmq.out" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 120); do rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup >/dev/null 2>&1 && break; sleep 1; done
    rpid="$(rabbitmqctl -n "$RABBITMQ_NODENAME" eval 'list_to_integer(os:getpid()).' 2>/dev/null | tr -dc 0-9 || true)"
    rver="$(rabbitmqctl -n "$RABBITMQ_NODENAME" version 2>/dev/null || echo '?')"
    log "RabbitMQ $rver on 127.0.0.1:$rport, pid $rpid"
    echo "rabbitmq: RabbitMQ $rver (Debian's rabbitmq-server), classic queues, default configuration" >> "$out/machine.txt"
    amqp_workloads rabbitmq "amqp://guest:guest@127.0.0.1:$rport/" "${rpid:-0}"
    rabbitmqctl -n "$RABBITMQ_NODENAME" stop >/dev/null 2>&1 || true
    unset RABBITMQ_NODENAME
  fi
fi

# ---------------------------------------------------------------------------------------
# NATS JetStream
# ---------------------------------------------------------------------------------------
if want nats; then
  echo "nats: $("$bin/nats-server" --version), JetStream, file storage, one stream of one subject" >> "$out/machine.txt"
  for variant in nats nats-durable; do
    broker_on "$variant" || continue
    port="$(free_port)"
    nd="$work/$variant"
    mkdir -p "$nd"
    {
      echo "listen: 127.0.0.1:$port"
      if [ "$variant" = nats-durable ]; then
        echo "jetstream { store_dir: \"$nd/data\", sync_interval: always }"
      else
        echo "jetstream { store_dir: \"$nd/data\" }"
      fi
    } > "$nd/nats.conf"
    "$bin/nats-server" -c "$nd/nats.conf" > "$out/logs/$variant.out" 2>&1 &
    npid=$!
    pids+=("$npid")
    wait_port "$port" || { log "nats-server did not start"; exit 1; }
    log "nats-server ($variant) on 127.0.0.1:$port, pid $npid"
    note_load "$variant"
    for w in flat 10k 50k 100k; do
      [ -n "$quick" ] && [ "$w" != flat ] && [ "$w" != 50k ] && continue
      rate=0
      [ "$w" != flat ] && rate="${w%k}000"
      wl="$w acks=all none"
      dropcache
      log "$variant: nats.go, $wl"
      "$bin/natsdriver" -broker "$variant" -workload "$wl" -url "nats://127.0.0.1:$port" -pid "$npid" -rate "$rate" \
        -duration "${dur}s" -warmup "${warm}s" -out "$out/results/nats-nats-go-$variant-$(slug "$wl").json" \
        2>>"$out/logs/$variant-natsdriver.log" || log "$variant: nats.go $wl failed"
    done
    stop_pid "$npid"
    rm -rf "$nd"
  done
fi

echo "load average at end ($(date -u +%H:%M) UTC): $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
"$bin/report" "$out"
log "done: $out/results.md"
