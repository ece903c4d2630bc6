#!/usr/bin/env bash
# A replicated yard cluster against one yard node and a 3-broker Apache Kafka 4.4 cluster, on
# this machine (issue 18, Performance). Every system runs on loopback with its data on the real
# disk (under /tmp), started fresh for each round:
#   yard-3   three `yard serve --node-id N --cluster-listen ... --peers ...` processes; every
#            partition of a topic is a Raft group with the three nodes as voters (RF 3);
#   kafka-3  three KRaft processes (broker and controller combined, static voters), Kafka 4.4
#            from Maven Central (bench/kafka/broker.sh install), -Xmx512m each,
#            default.replication.factor=3, min.insync.replicas=2 and
#            log.flush.interval.messages=1 (every append flushed before its ack, yard's
#            durability);
#   yard-1   one yard node (RF 1), the default fsync-before-ack;
#   kafka-3-noflush (only when asked for with --only) kafka-3 as shipped: no flush before the
#            ack, durability from the replicas' page caches.
# Workload (bench/driver, franz-go): a topic of 6 partitions, RF 3 (1 on yard-1), 1 KiB
# records, acks=all, idempotent producer, no consumer; flat out, then at a fixed rate. The
# order yard-3, kafka-3, yard-1 is run --rounds times. CPU seconds of every process of the
# system are read from /proc around each run.
#
#   bench/cluster/run.sh [--rounds N] [--duration S] [--rate R] [--only yard-3,kafka-3,yard-1] [--profile S] [--out DIR]
#
# --profile S takes S-second CPU, block and mutex profiles and then a heap profile (pprof; yard's --http-pprof samples
# blocking and contended locks over 100 us) of the three yard-3 nodes during an extra flat-out
# run after the first round's measured runs, into the output directory:
# yard-3-node<i>.{cpu,block,mutex,heap}.pprof.
# Writes bench/out/cluster-<UTC time>/: results/*.json (one per system, workload and round),
# logs/, machine.txt and results.md (the table). About 2 minutes per system and round.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds=2 dur=25 rate=10000 only="yard-3,kafka-3,yard-1" profile=0 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --duration) dur="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "cluster/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
warm=5 warm_run=10
out="${out:-$root/bench/out/cluster-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out/results" "$out/logs"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/yard-clusterbench.XXXXXX)"
bin="$work/bin"
mkdir -p "$bin"
pids=()
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$out/logs/run.log" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
stop_pids() {
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
}
# cpu PID... prints the user+system CPU seconds of the processes together.
cpu() { for p in "$@"; do cut -d')' -f2- "/proc/$p/stat"; done | awk '{t += $12 + $13} END {printf "%.2f", t / 100}'; }
rss() { for p in "$@"; do awk '/^VmHWM/ {print $2}' "/proc/$p/status"; done | awk '{t += $1} END {printf "%.0f", t / 1024}'; }

log "building yard and the driver into $bin"
(cd "$root" && go build -o "$bin/yard" ./cmd/yard && go build -o "$bin/driver" ./bench/driver)
"$root/bench/kafka/broker.sh" install
kcp="$("$root/bench/kafka/broker.sh" classpath)"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)"
  echo "disk: $(df -h "$work" | awk 'NR==2 {print $1", "$2}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "yard: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with local changes)')"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "workload: 1 KiB records, 6 partitions, acks=all, idempotent, franz-go, no consumer; ${dur} s per run, the first ${warm} s left out; flat out and ${rate} records/s; ${rounds} rounds"
} > "$out/machine.txt"

# start_yard3 -> sets sys_pids, sys_boot, sys_http (node i's HTTP address at index i-1)
start_yard3() {
  local i peers=() kp=() cp=() hp=()
  for i in 1 2 3; do kp[i]="$(free_port)"; cp[i]="$(free_port)"; hp[i]="$(free_port)"; peers+=("$i=127.0.0.1:${cp[i]}"); done
  sys_pids=() sys_http=() sys_boot=""
  for i in 1 2 3; do
    mkdir -p "$work/yard-3/n$i"
    "$bin/yard" serve --node-id "$i" --data-dir "$work/yard-3/n$i" --kafka-listen "127.0.0.1:${kp[i]}" --amqp-listen "" \
      --http-listen "127.0.0.1:${hp[i]}" --http-pprof --cluster-listen "127.0.0.1:${cp[i]}" \
      --peers "$(IFS=,; echo "${peers[*]}")" --log-level warn > "$out/logs/yard-3-n$i-r$round.out" 2>&1 &
    sys_pids+=("$!"); pids+=("$!")
    sys_http+=("127.0.0.1:${hp[i]}")
    sys_boot="${sys_boot:+$sys_boot,}127.0.0.1:${kp[i]}"
  done
  for i in 1 2 3; do wait_port "${kp[i]}" || { log "yard-3 node $i did not start"; exit 1; }; done
}
start_yard1() {
  local kp
  kp="$(free_port)"
  mkdir -p "$work/yard-1"
  "$bin/yard" serve --data-dir "$work/yard-1" --kafka-listen "127.0.0.1:$kp" --amqp-listen "" --http-listen "" \
    --log-level warn > "$out/logs/yard-1-r$round.out" 2>&1 &
  sys_pids=("$!"); pids+=("$!")
  sys_boot="127.0.0.1:$kp"
  wait_port "$kp" || { log "yard-1 did not start"; exit 1; }
}
start_kafka3() {
  local i kp=() cp=() voters=() id d
  for i in 1 2 3; do kp[i]="$(free_port)"; cp[i]="$(free_port)"; voters+=("$i@127.0.0.1:${cp[i]}"); done
  id="$(java -cp "$kcp" kafka.tools.StorageTool random-uuid 2>/dev/null)"
  sys_pids=() sys_boot=""
  for i in 1 2 3; do
    d="$work/kafka-3/n$i"
    mkdir -p "$d"
    cat > "$d/server.properties" <<EOF
# Kafka 4.4's config/server.properties (KRaft, combined broker and controller), node $i of 3,
# loopback listeners, replication factor 3 for every topic.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://127.0.0.1:${kp[i]},CONTROLLER://127.0.0.1:${cp[i]}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:${kp[i]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=$d/logs
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
EOF
    if [ "$1" = flush ]; then
      echo "# equal durability: flush every append before acknowledging it" >> "$d/server.properties"
      echo "log.flush.interval.messages=1" >> "$d/server.properties"
    fi
    cat > "$d/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$d/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
EOF
    java -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$kcp" kafka.tools.StorageTool format -t "$id" \
      -c "$d/server.properties" > "$d/format.out" 2>&1 || { cat "$d/format.out" >&2; exit 1; }
  done
  for i in 1 2 3; do
    d="$work/kafka-3/n$i"
    java -Xmx512m -Xms512m -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$d/log4j2.properties" -cp "$kcp" kafka.Kafka "$d/server.properties" \
      > "$d/server.out" 2>&1 < /dev/null &
    sys_pids+=("$!"); pids+=("$!")
    sys_boot="${sys_boot:+$sys_boot,}127.0.0.1:${kp[i]}"
  done
  for i in 1 2 3; do
    d="$work/kafka-3/n$i"
    for _ in $(seq 1 900); do grep -q "Kafka Server started" "$d/server.log" 2>/dev/null && break; sleep 0.2; done
    grep -q "Kafka Server started" "$d/server.log" || { log "kafka-3 node $i did not start"; tail -20 "$d/server.out" >&2; exit 1; }
  done
  cp "$work/kafka-3/n1/server.properties" "$out/logs/$2-n1-server.properties"
}
stop_system() {
  stop_pids "${sys_pids[@]}"
  [[ "$1" = kafka-3* ]] && for i in 1 2 3; do cp "$work/kafka-3/n$i/server.log" "$out/logs/$1-n$i-r$round.log" 2>/dev/null || true; done
  rm -rf "${work:?}/${1%-noflush}"
}

# ready waits until the system creates a replicated topic and accepts a produce to it.
ready() { # rf
  local t="ready-$RANDOM"
  for _ in $(seq 1 120); do
    "$bin/driver" topic -brokers "$sys_boot" -create "$t" -partitions 6 -replication "$1" 2>>"$out/logs/ready.log" && return 0
    sleep 0.5
  done
  log "the system never created a topic (see logs/ready.log)"; return 1
}

# profile_nodes takes CPU, block and mutex profiles of every yard-3 node at once, then heap
# profiles (partition
# leaders are spread over the nodes; each profile shows its node's share of leading and
# following). Block and mutex profiles are deltas over the same seconds.
profile_nodes() {
  local secs="$1" i cpids=()
  sleep "$warm"
  log "yard-3: ${secs} s CPU, block and mutex profiles of the three nodes"
  for i in 1 2 3; do
    curl -s -o "$out/yard-3-node$i.cpu.pprof" "http://${sys_http[i-1]}/debug/pprof/profile?seconds=$secs" & cpids+=("$!")
    curl -s -o "$out/yard-3-node$i.block.pprof" "http://${sys_http[i-1]}/debug/pprof/block?seconds=$secs" & cpids+=("$!")
    curl -s -o "$out/yard-3-node$i.mutex.pprof" "http://${sys_http[i-1]}/debug/pprof/mutex?seconds=$secs" & cpids+=("$!")
  done
  wait "${cpids[@]}"
  for i in 1 2 3; do # what each node holds at the end of the profiled seconds
    curl -s -o "$out/yard-3-node$i.heap.pprof" "http://${sys_http[i-1]}/debug/pprof/heap"
  done
}

run() { # system rf workload rate
  local s="$1" rf="$2" w="$3" r="$4" c0 c1 f
  f="$out/results/$s-$(echo "$w" | tr ' =/' '---')-r$round.json"
  echo "load average before $s $w round $round ($(date -u +%H:%M:%S) UTC): $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
  log "$s: $w (round $round)"
  c0="$(cpu "${sys_pids[@]}")"
  "$bin/driver" kafka -broker "$s" -workload "$w" -brokers "$sys_boot" -partitions 6 -replication "$rf" -acks all \
    -compression none -consume=false -rate "$r" -duration "${dur}s" -warmup "${warm}s" -out "$f" \
    2>>"$out/logs/$s-driver.log" || log "$s: $w failed (see logs/$s-driver.log)"
  c1="$(cpu "${sys_pids[@]}")"
  [ -f "$f" ] && jq --argjson c "$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')" --argjson m "$(rss "${sys_pids[@]}")" --arg l "$(cut -d' ' -f1 /proc/loadavg)" \
    --argjson round "$round" '. + {system_cpu_seconds: $c, system_peak_rss_mib: $m, load1_after: $l, round: $round}' "$f" > "$f.tmp" && mv "$f.tmp" "$f"
}

for round in $(seq 1 "$rounds"); do
  for s in yard-3 kafka-3 yard-1 kafka-3-noflush; do
    [[ ",$only," == *",$s,"* ]] || continue
    rf=3
    case "$s" in
      yard-3) start_yard3 ;;
      kafka-3) start_kafka3 flush kafka-3 ;;
      kafka-3-noflush) start_kafka3 noflush kafka-3-noflush ;;
      yard-1) start_yard1; rf=1 ;;
    esac
    log "$s up on $sys_boot (pids ${sys_pids[*]})"
    ready "$rf"
    # A first run, not measured: the JVM's JIT, Kafka's first topic and leader elections.
    log "$s: warm-up run (${warm_run} s flat out, not measured)"
    "$bin/driver" kafka -broker "$s" -workload warm-up -brokers "$sys_boot" -partitions 6 -replication "$rf" -acks all \
      -consume=false -duration "${warm_run}s" -warmup 1s -out /dev/null 2>>"$out/logs/$s-driver.log" || true
    run "$s" "$rf" "flat acks=all" 0
    run "$s" "$rf" "$((rate / 1000))k acks=all" "$rate"
    if [ "$s" = yard-3 ] && [ "$round" = 1 ] && [ "$profile" -gt 0 ]; then
      # Not measured: profiling costs a little CPU.
      profile_nodes "$profile" & ppid=$!
      "$bin/driver" kafka -broker "$s" -workload profile -brokers "$sys_boot" -partitions 6 -replication "$rf" -acks all \
        -consume=false -duration "$((profile + warm + 2))s" -warmup 1s -out "$out/yard-3-profile-run.json" 2>>"$out/logs/$s-driver.log" || true
      wait "$ppid"
    fi
    stop_system "$s"
  done
done
echo "load average at end ($(date -u +%H:%M) UTC): $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"

# The table: one row per system, workload and round, in the order they ran.
{
  echo "# yard cluster (3 nodes) vs one node vs Kafka 4.4 (3 brokers, RF 3)"
  echo
  sed 's/^/    /' "$out/machine.txt"
  echo
  echo "| system | workload | round | records/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | CPU s per M records (all processes) | peak RSS MiB (sum) | load1 after |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for f in $(ls -tr "$out"/results/*.json); do
    jq -r --argjson w "$warm" '"| \(.broker) | \(.workload) | \(.round) | \(.records_per_sec|floor) | \(.ack_latency.p50_ms // "-") | \(.ack_latency.p99_ms // "-") | \(.ack_latency.p999_ms // "-") | \(.ack_latency.max_ms // "-") | \(.errors) | \(if .records > 0 then (.system_cpu_seconds * 1e6 / (.records_per_sec * (.seconds + $w)) * 10 | floor / 10) else "-" end) | \(.system_peak_rss_mib) | \(.load1_after) |"' "$f"
  done
  echo
  echo "CPU per record: CPU seconds of all the system's processes over the whole run (warm-up included) over records/s times the run's length."
  grep -h '"note"' "$out"/results/*.json | sort | uniq -c | sed 's/^/    /' || true
} > "$out/results.md"
log "done: $out/results.md"
cat "$out/results.md"
