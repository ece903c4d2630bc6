#!/usr/bin/env bash
# Runs the AMQP benchmarks against yard and, as the baseline in the same run, against
# RabbitMQ (Debian's rabbitmq-server, installed if missing, started here as a throwaway node
# on a free port with its data in a temp dir, stopped afterwards).
#
#	bash bench/amqp/run.sh [benchtime, default 100000x]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
benchtime="${1:-100000x}"

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
(cd "$root" && YARD_BENCH_AMQP_URL="amqp://guest:guest@127.0.0.1:$port/" go test ./bench/amqp -run XXX -bench . -benchtime "$benchtime" -count 2)
echo "== yard"
(cd "$root" && go test ./bench/amqp -run XXX -bench . -benchtime "$benchtime" -count 2)
