#!/usr/bin/env bash
# Installs the Debian 12 packages shmq needs to build, test, fuzz and benchmark.
# Only what is missing is installed; re-running it is cheap.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev libboost-program-options-dev libboost-system-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libssl-dev libsystemd-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcmocka-dev
  python3 pybind11-dev python3-pybind11
  awscli python3-boto3 python3-pytest
  golang-go golang-github-aws-aws-sdk-go-dev golang-github-aws-aws-sdk-go-v2-dev
  ruby ruby-aws-sdk libamazon-sqs-simple-perl
  prometheus python3-prometheus-client chromium
  libzmq3-dev iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev
  wrk stunnel4
  clang libclang-rt-14-dev
)
# Node.js runs the JavaScript SDK's client tests; any node already on PATH
# (e.g. a newer one from elsewhere) will do, else Debian's.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
