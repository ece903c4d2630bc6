#!/usr/bin/env bash
# Installs what the consumer-group interop tests drive, from the package registries, cached
# under $HOME/.cache/yard-interop (idempotent):
#   kafka-python, through test/interop/kafka/setup.sh (its venv is reused, not duplicated);
#   Apache Kafka's own tools (org.apache.kafka:kafka-tools 4.x) from Maven Central, whose
#   kafka-consumer-groups is the class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand.
# Prints the env lines the tests read.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"

python="$(bash "$here/../kafka/setup.sh" | sed -n 's/^PYTHON=//p')"

out="$cache/kafka-tools"
stamp="$(sha256sum < "$here/tools/pom.xml" | cut -c1-16)"
if [ ! -f "$out/$stamp.ok" ]; then
  echo "setup: fetching kafka-tools with Maven" >&2
  rm -rf "$out" && mkdir -p "$out"
  cp "$here/tools/pom.xml" "$out/pom.xml"
  (cd "$out" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$out/$stamp.ok"
fi

echo "PYTHON=$python"
echo "KAFKA_TOOLS_CP=$out/target/lib/*"
