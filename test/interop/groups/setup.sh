#!/usr/bin/env bash
# Installs what the consumer-group interop tests drive, from the package registries, cached
# under $HOME/.cache/yard-interop (idempotent):
#   kafka-python and kcat (librdkafka), through test/interop/kafka/setup.sh (reused, not
#   duplicated);
#   Apache Kafka's own tools (org.apache.kafka:kafka-tools 4.x) from Maven Central, whose
#   kafka-consumer-groups is the class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand;
#   the Java group member in java/ (kafka-clients 4.x), built with Maven.
# Prints the env lines the tests read.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"
. "$here/../install-lock.sh"

kafka_env="$(bash "$here/../kafka/setup.sh")"
python="$(echo "$kafka_env" | sed -n 's/^PYTHON=//p')"
kcat="$(echo "$kafka_env" | sed -n 's/^KCAT=//p')"

out="$cache/kafka-tools"
stamp="$(sha256sum < "$here/tools/pom.xml" | cut -c1-16)"
if [ ! -f "$out/$stamp.ok" ]; then
  echo "setup: fetching kafka-tools with Maven" >&2
  rm -rf "$out" && mkdir -p "$out"
  cp "$here/tools/pom.xml" "$out/pom.xml"
  (cd "$out" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$out/$stamp.ok"
fi

# The Java group member in java/ (kafka-clients 4.x), rebuilt when its sources change.
javaout="$cache/groups-java"
jstamp="$(cat "$here/java/pom.xml" "$here"/java/src/main/java/dev/yard/groups/*.java | sha256sum | cut -c1-16)"
if [ ! -f "$javaout/$jstamp.ok" ]; then
  echo "setup: building the Java group member (kafka-clients)" >&2
  rm -rf "$javaout" && mkdir -p "$javaout"
  cp -r "$here/java/." "$javaout/src"
  (cd "$javaout/src" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$javaout/$jstamp.ok"
fi

echo "PYTHON=$python"
echo "KCAT=$kcat"
echo "GROUPS_JAVA_CP=$javaout/src/target/yard-groups-interop-1.0.jar:$javaout/src/target/lib/*"
echo "KAFKA_TOOLS_CP=$out/target/lib/*"
