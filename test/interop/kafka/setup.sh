#!/usr/bin/env bash
# Installs the real Kafka clients the interop tests drive, from the package registries:
#   kcat (librdkafka) from Debian; kafka-python (+ codec libraries) into a venv; confluent-kafka
#   (a recent librdkafka, for its admin API) into another; kafkajs (npm); the Java program in
#   java/ (kafka-clients 4.x) and java-sasl/ (kafka-clients 4.4 over SASL_SSL) built with Maven.
# Idempotent and cached under $HOME/.cache/yard-interop; prints the env lines the tests read.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"
. "$here/../install-lock.sh"

# kcat: Debian package "kcat".
if ! command -v kcat >/dev/null 2>&1; then
  echo "setup: installing kcat" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq kcat >&2
fi

# kafka-python with every codec: python-snappy, zstandard, lz4.
venv="$cache/kafka-python-venv"
if ! "$venv/bin/python" -c 'import kafka, snappy, zstandard, lz4' >/dev/null 2>&1; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kafka-python==3.0.12 python-snappy zstandard lz4 >&2
fi

# confluent-kafka: its wheel carries librdkafka 2.x, whose admin API kcat 1.7.1 lacks.
ckvenv="$cache/confluent-kafka-venv"
if ! "$ckvenv/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1; then
  echo "setup: creating $ckvenv" >&2
  python3 -m venv "$ckvenv"
  "$ckvenv/bin/pip" install -q --disable-pip-version-check confluent-kafka==2.16.1 >&2
fi

# kafkajs with the snappy and lz4 codec plugins (its zstd plugin needs a native build: not used).
jsdir="$cache/kafkajs"
if [ ! -f "$jsdir/node_modules/kafkajs-lz4/package.json" ] || [ ! -f "$jsdir/node_modules/kafkajs/package.json" ]; then
  echo "setup: installing kafkajs into $jsdir" >&2
  mkdir -p "$jsdir"
  # kafkajs-lz4 builds a native module: point node-gyp at the headers Debian's nodejs ships,
  # since it would otherwise download them from a site this machine cannot reach.
  (cd "$jsdir" && npm_config_nodedir=/usr npm install --silent --no-audit --no-fund --prefix "$jsdir" kafkajs@2.2.4 kafkajs-snappy@1.1.0 kafkajs-lz4@1.2.1 >&2)
fi

# The Java program: rebuilt when its sources change.
javaout="$cache/java"
stamp="$(cat "$here/java/pom.xml" "$here"/java/src/main/java/dev/yard/interop/*.java | sha256sum | cut -c1-16)"
if [ ! -f "$javaout/$stamp.ok" ]; then
  echo "setup: building the Java interop program (kafka-clients)" >&2
  rm -rf "$javaout" && mkdir -p "$javaout"
  cp -r "$here/java/." "$javaout/src"
  (cd "$javaout/src" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$javaout/$stamp.ok"
fi

# The SASL_SSL program (kafka-clients 4.4): rebuilt when its sources change.
saslout="$cache/java-sasl"
stamp="$(cat "$here/java-sasl/pom.xml" "$here"/java-sasl/src/main/java/dev/yard/interop/*.java | sha256sum | cut -c1-16)"
if [ ! -f "$saslout/$stamp.ok" ]; then
  echo "setup: building the Java SASL_SSL program (kafka-clients 4.4)" >&2
  rm -rf "$saslout" && mkdir -p "$saslout"
  cp -r "$here/java-sasl/." "$saslout/src"
  (cd "$saslout/src" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$saslout/$stamp.ok"
fi

echo "KCAT=$(command -v kcat)"
echo "PYTHON=$venv/bin/python"
echo "CONFLUENT_PYTHON=$ckvenv/bin/python"
echo "KAFKAJS_MODULES=$jsdir/node_modules"
echo "JAVA_SASL_CP=$saslout/src/target/yard-kafka-sasl-ssl-1.0.jar:$saslout/src/target/lib/*"
echo "JAVA_CP=$javaout/src/target/yard-kafka-interop-1.0.jar:$javaout/src/target/lib/*"
