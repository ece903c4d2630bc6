#!/usr/bin/env bash
# Installs the browser the console's end-to-end test drives: Debian's chromium (headless,
# through the DevTools protocol with chromedp). Idempotent; prints the env line the test reads.
set -euo pipefail
cache="${HOME}/.cache/yard-interop"
mkdir -p "$cache"
. "$(cd "$(dirname "$0")" && pwd)/../install-lock.sh"

if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
fi
echo "CHROMIUM=$(command -v chromium)"
