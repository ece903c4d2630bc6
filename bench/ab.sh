#!/usr/bin/env bash
# Before/after benchmarks of the hot paths in the same run: builds the test binaries of the log,
# produce and AMQP publish-confirm benchmarks at two revisions and runs them alternately, so that
# a noisy, shared machine affects both sides alike.
#
#   bash bench/ab.sh OLD_REV [NEW_REV] [ROUNDS]      (NEW_REV defaults to the work tree)
#
# Output: one file per benchmark run under bench/out/ab-<time>/, and a benchstat comparison when
# benchstat is installed (go install golang.org/x/perf/cmd/benchstat@latest).
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/ab.sh OLD_REV [NEW_REV] [ROUNDS]}
new=${2:-}
rounds=${3:-3}
out=$PWD/bench/out/ab-$(date +%Y%m%d-%H%M%S) # absolute: build() cds into a temporary worktree
mkdir -p "$out"

# package; benchmark regexp; -benchtime (";"-separated: the regexp holds "|")
benches=(
  "./internal/log;Append/(never|always-1$|always-64);2s"
  "./internal/kafka;Produce$;200000x"
  "./internal/amqp;DurableConfirmAck;2s"
)

build() { # rev dir
  local rev=$1 dir=$2 src
  if [ -z "$rev" ]; then src=$PWD; else
    src=$(mktemp -d)
    git worktree add -q --detach "$src" "$rev"
  fi
  for b in "${benches[@]}"; do
    pkg=${b%%;*}
    (cd "$src" && go test -c -o "$dir/$(basename "$pkg").test" "$pkg")
  done
  if [ -n "$rev" ]; then git worktree remove --force "$src"; fi
}
build "$old" "$out/old"
build "$new" "$out/new"

for r in $(seq 1 "$rounds"); do
  for side in old new; do
    for b in "${benches[@]}"; do
      IFS=';' read -r pkg re bt <<<"$b"
      name=$(basename "$pkg")
      dir=$(mktemp -d)
      (cd "$dir" && "$out/$side/$name.test" -test.run XXX -test.bench "$re" \
        -test.benchtime "$bt" -test.benchmem) | tee -a "$out/$side.txt"
      rm -rf "$dir"
    done
  done
done
if command -v benchstat >/dev/null; then benchstat "$out/old.txt" "$out/new.txt" | tee "$out/benchstat.txt"; fi
echo "results in $out"
