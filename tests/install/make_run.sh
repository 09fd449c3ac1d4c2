#!/usr/bin/env bash
# `make run` builds only what it runs: what make would do (`make -n`, which
# runs nothing) for a fresh build directory builds the shmqd and shmqctl
# targets, not the whole tree with its tests and benchmarks.
#
#   tests/install/make_run.sh SOURCE_DIR
set -euo pipefail
fresh="$(mktemp -d "${TMPDIR:-/tmp}/shmq-make-run-XXXXXX")"
trap 'rm -rf "$fresh"' EXIT
# Not the make that runs the tests (`make test`): its flags are not ours.
plan="$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -n -C "$1" run BUILD_DIR="$fresh/build" SHMQD_FLAGS=--version)"
echo "$plan"
builds="$(grep -E '^cmake --build ' <<<"$plan" || true)"
[ -n "$builds" ] || { echo "FAIL: make run builds nothing" >&2; exit 1; }
if grep -vE -- '--target shmqd shmqctl$' <<<"$builds"; then
  echo "FAIL: make run builds more than shmqd and shmqctl" >&2
  exit 1
fi
grep -qxF "$fresh/build/bin/shmqd --version" <<<"$plan" || { echo "FAIL: make run does not run shmqd" >&2; exit 1; }
