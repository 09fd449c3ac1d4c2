#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, as `cmake --install` does
# for a user, then builds a libshmq program against it twice, as its users
# would: with pkg-config and g++, and with CMake's find_package(shmq). Each
# program talks to the installed shmqd. Fails, saying why, if the installed
# package is incomplete, exports the project's own build flags, or does not
# link.
#
#   tests/install/consumers.sh BUILD_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/shmq-install-XXXXXX")"
prefix="$work/prefix"
ns="inst$$"
daemon=""
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  rm -f /dev/shm/shmq."$ns".*
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in bin/shmqd bin/shmqctl include/shmq/shmq.hpp include/shmq/shmq.h include/shmq/export.h include/shmq/version.hpp; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
pc="$(find "$prefix" -name shmq.pc)"
[ -n "$pc" ] || fail "no shmq.pc installed"
config="$(find "$prefix" -name shmqConfig.cmake)"
[ -n "$config" ] || fail "no shmqConfig.cmake installed"
if grep -l shmq_build_flags "$(dirname "$config")"/*.cmake; then
  fail "the installed CMake package exports the project's own build flags (shmq_build_flags)"
fi

"$prefix/bin/shmqd" --namespace "$ns" --bridge-listen off --log-level warn &
daemon=$!
for _ in $(seq 1 150); do
  "$prefix/bin/shmqctl" --namespace "$ns" list-queues >/dev/null 2>&1 && break
  kill -0 "$daemon" 2>/dev/null || fail "the installed shmqd exited at start"
  sleep 0.1
done

version="$("$prefix/bin/shmqctl" --version)"
export PKG_CONFIG_PATH="$(dirname "$pc")"
# Where an installed libshmq.so is found (the dynamic loader's cache does
# this for /usr/local/lib after ldconfig).
export LD_LIBRARY_PATH="$(cd "$(dirname "$pc")/.." && pwd)"
[ "$version" = "shmqctl $(pkg-config --modversion shmq)" ] || fail "shmqctl --version '$version' is not shmq.pc's"

echo "-- pkg-config and g++"
# shellcheck disable=SC2046  # the flags are words
g++ -std=c++20 -o "$work/app-pc" "$here/app/app.cpp" $(pkg-config --cflags --libs shmq) ||
  fail "g++ -std=c++20 app.cpp \$(pkg-config --cflags --libs shmq) does not build"
out="$("$work/app-pc" "$ns")" || fail "the pkg-config build did not run: $out"
[ "$out" = "shmq $(pkg-config --modversion shmq): hello from an installed libshmq" ] || fail "pkg-config build printed '$out'"
echo "$out"

echo "-- pkg-config and a C compiler (C99, libshmq.so)"
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -pedantic -Werror -o "$work/app-c" "$here/app/app.c" $(pkg-config --cflags --libs shmq) ||
  fail "gcc -std=c99 app.c \$(pkg-config --cflags --libs shmq) does not build"
readelf -d "$work/app-c" | grep -q 'NEEDED.*libshmq\.so\.' || fail "the C program does not use libshmq.so"
out="$("$work/app-c" "$ns")" || fail "the C program did not run: $out"
[ "$out" = "shmq $(pkg-config --modversion shmq): hello from C" ] || fail "the C program printed '$out'"
echo "$out"

echo "-- what libshmq.so exports"
so="$(find "$prefix" -name 'libshmq.so.*.*.*' | head -1)"
[ -n "$so" ] || fail "no libshmq.so.X.Y.Z installed"
soname="$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')"
[ "$soname" = "libshmq.so.$(pkg-config --modversion shmq | cut -d. -f1-2)" ] || fail "SONAME is '$soname'"
# The C API, the C++ API's classes, and the standard library's templates
# they instantiate; none of the library's internals or of its dependencies.
leaked="$(nm -D --defined-only -C "$so" | grep -E 'shmq::detail|nlohmann|boost|EVP_' || true)"
[ -z "$leaked" ] || fail "libshmq.so exports internals: $leaked"
nm -D --defined-only "$so" | grep -q ' T shmq_send$' || fail "libshmq.so does not export shmq_send"
echo "$soname: $(nm -D --defined-only "$so" | grep -c ' T shmq_') C functions"

# The Python package, where the build has it (-DSHMQ_BUILD_PYTHON=ON).
py_app='
import sys, shmq
with shmq.Client(sys.argv[1]) as client:
    client.create_queue("installed-py")
    with client.open_queue("installed-py") as q:
        q.send("hello from Python")
        (m,) = q.receive(wait_time=5)
        m.delete()
        print(f"shmq {shmq.__version__}: {m.text}")
'
if [ -d "$build/python/shmq" ]; then
  echo "-- the Python package, as installed"
  site="$(find "$prefix" -type d -path '*dist-packages/shmq' | head -1)"
  [ -n "$site" ] || fail "the Python package shmq is not installed"
  out="$(PYTHONPATH="$(dirname "$site")" /usr/bin/python3 -c "$py_app" "$ns")" ||
    fail "the installed Python package did not run: $out"
  [ "$out" = "shmq $(pkg-config --modversion shmq): hello from Python" ] || fail "the Python package printed '$out'"
  echo "$out"
fi

echo "-- find_package(shmq)"
cmake -S "$here/app" -B "$work/app-build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 ||
  { cat "$work/cmake.log"; fail "find_package(shmq) does not configure"; }
cmake --build "$work/app-build" >>"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "the CMake consumer does not build"; }
if grep -E -- '-Wshadow|-fsanitize|-Wnon-virtual-dtor' "$work/app-build/compile_commands.json"; then
  fail "the installed package passes the project's own warning or sanitizer flags to its users"
fi
out="$("$work/app-build/app" "$ns")" || fail "the CMake build did not run: $out"
[ "$out" = "shmq $(pkg-config --modversion shmq): hello from an installed libshmq" ] || fail "CMake build printed '$out'"
echo "$out"
