#!/usr/bin/env bash
# Starts and stops a real Apache Kafka 4.4 broker on loopback, for comparisons with yard: a
# single-node KRaft cluster (one process, broker and controller) from Kafka's Maven Central
# artifacts (org.apache.kafka:kafka_2.13 4.4.0 and its dependencies, resolved once by Maven
# into ~/.cache/yard-bench/kafka-4.4 from pom.xml beside this script), run on the machine's
# Java (17 or later) with the JVM options of Kafka's own kafka-server-start.sh.
#
#   bench/kafka/broker.sh start [--port N] [--data-dir DIR] [--durable] [--heap SIZE] [--set key=value]...
#   bench/kafka/broker.sh stop  [--data-dir DIR | --port N]
#   bench/kafka/broker.sh classpath      (Kafka's jars, for its tools:
#                                         java -cp "$(bench/kafka/broker.sh classpath)" org.apache.kafka.tools.ProducerPerformance ...)
#   bench/kafka/broker.sh install        (only resolve the jars)
#
# start prints KAFKA_BOOTSTRAP=127.0.0.1:PORT, KAFKA_PID=... and KAFKA_DATA_DIR=... and returns
# once the broker serves. --port defaults to a free port; the controller listens on another free
# port. --data-dir defaults to /tmp/yard-kafka-PORT; a data dir not yet formatted is formatted
# (kafka.tools.StorageTool, a new cluster id), one already formatted is reused. The broker's
# configuration is Kafka's shipped server.properties for KRaft, with loopback listeners; it
# logs to DIR/server.log.
#
# Kafka as shipped does not fsync before acknowledging a produce: it leaves flushing to the
# operating system (and relies on replication, which a single node does not have). --durable
# sets log.flush.interval.messages=1, so that every append is flushed before it is
# acknowledged, the durability yard gives by default. --set adds any other broker property.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-bench"
kdir="$cache/kafka-4.4"
m2="${HOME}/.cache/yard-interop/m2" # shared with test/interop's Maven installs

install() {
  mkdir -p "$cache"
  local stamp
  stamp="$(sha256sum < "$here/pom.xml" | cut -c1-16)"
  [ -f "$kdir/$stamp.ok" ] && return 0
  (
    flock 9
    [ -f "$kdir/$stamp.ok" ] && exit 0
    echo "broker.sh: resolving Apache Kafka 4.4 from Maven Central into $kdir" >&2
    rm -rf "$kdir" && mkdir -p "$kdir"
    cp "$here/pom.xml" "$kdir/pom.xml"
    (cd "$kdir" && mvn -q -B -Dmaven.repo.local="$m2" package >&2)
    touch "$kdir/$stamp.ok"
  ) 9>"$cache/install.lock"
}

classpath() { echo "$kdir/target/lib/*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cmd="${1:-}"
[ $# -gt 0 ] && shift
port="" dir="" durable="" heap="1G" sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --data-dir) dir="$2"; shift 2 ;;
    --durable) durable=1; shift ;;
    --heap) heap="$2"; shift 2 ;;
    --set) sets+=("$2"); shift 2 ;;
    *) echo "broker.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

case "$cmd" in
  install) install ;;
  classpath) install; classpath ;;
  start)
    install
    [ -n "$port" ] || port="$(free_port)"
    [ -n "$dir" ] || dir="/tmp/yard-kafka-$port"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -f "$dir/kafka.pid" ] && kill -0 "$(cat "$dir/kafka.pid")" 2>/dev/null; then
      echo "broker.sh: a broker already runs on $dir (pid $(cat "$dir/kafka.pid"))" >&2; exit 1
    fi
    cport="$(free_port)"
    cat > "$dir/server.properties" <<EOF
# Kafka 4.4's config/server.properties (KRaft, combined broker and controller), loopback listeners.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=$dir/logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
group.initial.rebalance.delay.ms=0
EOF
    if [ -n "$durable" ]; then
      echo "# equal durability: flush every append before acknowledging it" >> "$dir/server.properties"
      echo "log.flush.interval.messages=1" >> "$dir/server.properties"
    fi
    for s in "${sets[@]}"; do echo "$s" >> "$dir/server.properties"; done
    cat > "$dir/log4j2.properties" <<EOF
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/server.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.apache.name=org.apache.kafka
logger.apache.level=INFO
EOF
    cp="$(classpath)"
    jvm=(-Xmx"$heap" -Xms"$heap" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
      -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
      -Dlog4j2.configurationFile="$dir/log4j2.properties")
    if [ ! -f "$dir/logs/meta.properties" ]; then
      java -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$cp" kafka.tools.StorageTool format \
        -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" -c "$dir/server.properties" > "$dir/format.out" 2>&1 ||
        { cat "$dir/format.out" >&2; exit 1; }
    fi
    : > "$dir/server.log"
    nohup java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" > "$dir/server.out" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$dir/kafka.pid"
    echo "$port" > "$dir/port"
    for _ in $(seq 1 600); do
      if grep -q "Kafka Server started" "$dir/server.log" 2>/dev/null; then
        echo "KAFKA_BOOTSTRAP=127.0.0.1:$port"
        echo "KAFKA_PID=$pid"
        echo "KAFKA_DATA_DIR=$dir"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "broker.sh: Kafka exited while starting; see $dir/server.log and $dir/server.out" >&2
        tail -20 "$dir/server.out" >&2
        exit 1
      fi
      sleep 0.2
    done
    echo "broker.sh: Kafka did not start within 120 s; see $dir/server.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    if [ -z "$dir" ]; then
      [ -n "$port" ] || { echo "broker.sh: stop needs --data-dir or --port" >&2; exit 2; }
      dir="/tmp/yard-kafka-$port"
    fi
    [ -f "$dir/kafka.pid" ] || { echo "broker.sh: no kafka.pid in $dir" >&2; exit 1; }
    pid="$(cat "$dir/kafka.pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/kafka.pid"
    ;;
  *)
    sed -n '2,25p' "$0" >&2
    exit 2
    ;;
esac
