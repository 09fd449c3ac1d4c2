#!/usr/bin/env bash
# Runs every libFuzzer target of a SHMQ_FUZZ build for a bounded time each,
# starting from its seed corpus in tests/fuzz/corpus/<name>/ (which it does
# not modify). Exits non-zero if any target finds a crash, a leak or a hang;
# the input that caused it is left in the artifacts directory it names.
#
#   tools/run-fuzzers.sh [--build DIR] [--seconds N] [TARGET...]
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
build="$top/build-fuzz"
seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build"/fuzz/*_fuzz; do targets+=("$(basename "$bin")"); done
fi
[ -x "$build/fuzz/${targets[0]}" ] || { echo "run-fuzzers: no fuzz targets in $build/fuzz (configure with -DSHMQ_FUZZ=ON)" >&2; exit 2; }

work="$(mktemp -d)"
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"
failed=()
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  seeds="$top/tests/fuzz/corpus/$name"
  corpus="$work/corpus-$name"
  mkdir -p "$corpus"
  echo "== $target: ${seconds}s from $(find "$seeds" -type f 2>/dev/null | wc -l) seeds"
  if ! "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" "$corpus" "$seeds" >"$work/$name.log" 2>&1; then
    failed+=("$target")
    tail -n 60 "$work/$name.log"
  fi
  # The last status line: executions, coverage (cov: edges, ft: features), corpus.
  grep -E '^#[0-9]+' "$work/$name.log" | tail -n 1 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-fuzzers: ${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]} (inputs in $artifacts)"
  exit 1
fi
echo "run-fuzzers: ${#targets[@]} targets, ${seconds}s each, no findings"
rm -rf "$work"
