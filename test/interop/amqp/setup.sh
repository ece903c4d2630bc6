#!/usr/bin/env bash
# Installs the real AMQP clients the interop tests drive: amqp-tools (apt), pika (pip into a
# venv), amqplib (npm; and amqplib 0.10's package with its test folder) and the RabbitMQ Java
# client (Maven). Idempotent; everything is cached in $HOME/.cache/yard-interop so that a second
# run costs seconds.
set -euo pipefail
# Installer chatter goes to stderr; stdout carries only the KEY=value lines the tests read.
exec 3>&1 1>&2
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"
. "$here/../install-lock.sh"

if ! command -v amqp-publish >/dev/null || ! command -v amqp-consume >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq amqp-tools >/dev/null
fi

# rabbitmqadmin (management_api_test.go) ships with RabbitMQ's management plugin, in Debian's
# rabbitmq-server package; its service is not used.
if ! command -v rabbitmqadmin >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
fi

# amqplib_suite_test.go brings up the loopback of a network namespace of its own with ip.
if ! command -v ip >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq iproute2 >/dev/null
fi

venv="$cache/venv-amqp"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pika' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'pika==1.4.4'
fi

node_dir="$cache/node-amqp"
if [ ! -d "$node_dir/node_modules/amqplib" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund amqplib@2.3.1 >/dev/null)
fi

# amqplib 0.10's npm package ships its own test folder (2.x's does not): amqplib_suite_test.go
# runs it against yard with its own runner (mocha and claire, its devDependencies).
suite_dir="$cache/amqplib-0.10-suite"
if [ ! -x "$suite_dir/package/node_modules/.bin/mocha" ] || [ ! -d "$suite_dir/package/test" ]; then
  rm -rf "$suite_dir" && mkdir -p "$suite_dir"
  (cd "$suite_dir" && npm pack --silent 'amqplib@0.10.9' >/dev/null && tar xzf amqplib-0.10.9.tgz && \
    cd package && npm install --silent --no-audit --no-fund --ignore-scripts >/dev/null)
fi

jar_stamp="$cache/java-amqp.stamp"
jar_dir="$cache/java-amqp"
if [ ! -f "$jar_stamp" ] || [ "$here/java/pom.xml" -nt "$jar_stamp" ] || \
   [ -n "$(find "$here/java/src" -newer "$jar_stamp" -type f)" ]; then
  rm -rf "$jar_dir" && mkdir -p "$jar_dir"
  cp -r "$here/java/pom.xml" "$here/java/src" "$jar_dir/"
  (cd "$jar_dir" && mvn -q -B -Dmaven.repo.local="$cache/m2" package dependency:copy-dependencies -DoutputDirectory=target/lib >/dev/null)
  touch "$jar_stamp"
fi
echo "yard-interop amqp clients ready in $cache"
{
  echo "PYTHON=$venv/bin/python"
  echo "NODE_PATH=$node_dir/node_modules"
  echo "AMQPLIB_SUITE=$suite_dir/package"
  echo "JAVA_CP=$jar_dir/target/classes:$(ls "$jar_dir"/target/lib/*.jar | tr '\n' ':')"
  echo "AMQP_PUBLISH=$(command -v amqp-publish)"
  echo "AMQP_CONSUME=$(command -v amqp-consume)"
  echo "RABBITMQADMIN=$(command -v rabbitmqadmin)"
} >&3
