#!/usr/bin/env bash
# Installs the operators' tools the ops interop tests drive against yard's management API:
#  - monitoring-plugins' check_rabbitmq_* (Debian's nagios-plugins-rabbitmq), always;
#  - with YARD_OPS_TOOLS=1 (they take minutes to build the first time): KEDA's RabbitMQ
#    scaler (KEDA's own pkg/scalers, in the keda/ module beside this script), OpenTofu and
#    the Terraform RabbitMQ provider (cyrilgdn/terraform-provider-rabbitmq), built from
#    their Go modules into $HOME/.cache/yard-interop/ops/bin and kept there.
# Idempotent. stdout carries only the KEY=value lines the tests read (a tool's line is
# printed when it is built, whatever YARD_OPS_TOOLS says).
set -euo pipefail
exec 3>&1 1>&2
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"

if ! command -v check_rabbitmq_queue >/dev/null; then
  # Under the install lock (in a subshell, which releases it on exit: the Go builds below
  # need no lock and must not hold up the other suites' setups for minutes).
  (
    . "$here/../install-lock.sh"
    if ! command -v check_rabbitmq_queue >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq nagios-plugins-rabbitmq >/dev/null
    fi
  )
fi

# Versions (README's compatibility table names them).
tofu_version=v1.12.6
provider_version=v1.8.0 # the one version of the provider's module the Go module proxy serves
bin="$cache/ops/bin"
mkdir -p "$bin"

# build_module BINARY MODULE@VERSION PACKAGE: builds PACKAGE of a Go module as its own main
# module (so that its go.mod's replace directives apply, which `go install` refuses), from
# the module cache.
build_module() {
  local out="$1" modver="$2" pkg="$3" dir
  if [ -x "$out" ] && [ "$(cat "$out.version" 2>/dev/null)" = "$modver" ]; then
    return
  fi
  echo "setup: building $modver ($pkg); this takes minutes the first time"
  dir="$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$dir" ] || { echo "setup: cannot download $modver"; exit 1; }
  (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -o "$out.tmp.$$" "$pkg")
  mv "$out.tmp.$$" "$out"
  echo "$modver" >"$out.version"
}

if [ "${YARD_OPS_TOOLS:-}" = "1" ]; then
  build_module "$bin/tofu" "github.com/opentofu/opentofu@$tofu_version" ./cmd/tofu
  build_module "$bin/terraform-provider-rabbitmq" "github.com/cyrilgdn/terraform-provider-rabbitmq@$provider_version" .
  keda="$bin/keda-rabbitmq"
  if [ ! -x "$keda" ] || [ -n "$(find "$here/keda" -newer "$keda" -type f)" ]; then
    echo "setup: building KEDA's RabbitMQ scaler (test/interop/ops/keda); this takes minutes the first time"
    (cd "$here/keda" && go build -trimpath -o "$keda.tmp.$$" .)
    mv "$keda.tmp.$$" "$keda"
  fi
fi

echo "yard-interop ops tools ready"
{
  echo "CHECK_RABBITMQ_QUEUE=$(command -v check_rabbitmq_queue)"
  [ -x "$bin/tofu" ] && echo "TOFU=$bin/tofu"
  [ -x "$bin/terraform-provider-rabbitmq" ] && echo "TERRAFORM_PROVIDER_RABBITMQ=$bin/terraform-provider-rabbitmq"
  [ -x "$bin/keda-rabbitmq" ] && echo "KEDA_RABBITMQ=$bin/keda-rabbitmq"
  echo "TOFU_VERSION=$tofu_version"
  echo "PROVIDER_VERSION=$provider_version"
} >&3
