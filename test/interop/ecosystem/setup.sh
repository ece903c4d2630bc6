#!/usr/bin/env bash
# Installs what the ecosystem interop tests run, from Maven Central, cached under
# $HOME/.cache/yard-interop (idempotent): the Java project in java/ (a Kafka Streams 4.4 word
# count, and Kafka Connect 4.4's runtime with the FileStream connectors), built once with Maven;
# its jar and dependencies are one class path for both.
# Prints the env lines the tests read; SKIP=reason when Java or Maven is absent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP=$tool is not installed"
    exit 0
  fi
done
. "$here/../install-lock.sh"

out="$cache/ecosystem-java"
stamp="$(find "$here/java" -type f | sort | xargs cat | sha256sum | cut -c1-16)"
if [ ! -f "$out/$stamp.ok" ]; then
  echo "setup: building the Kafka Streams and Connect programs (Maven)" >&2
  rm -rf "$out" && mkdir -p "$out"
  cp -r "$here/java/." "$out/src"
  (cd "$out/src" && mvn -q -B -Dmaven.repo.local="$cache/m2" package >&2)
  touch "$out/$stamp.ok"
fi

echo "ECOSYSTEM_CP=$out/src/target/yard-ecosystem-interop-1.0.jar:$out/src/target/lib/*"
