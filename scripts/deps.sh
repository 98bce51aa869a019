#!/usr/bin/env bash
# Installs the Debian 12 packages stepwise builds and tests with, if any are
# missing. Safe to run again: it installs nothing when everything is there.
# docs/dependencies.md says why each one is needed.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ pkg-config
  protobuf-compiler libprotobuf-dev
  libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libyaml-cpp-dev libssl-dev libcli11-dev libmicrohttpd-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nghttp2-client
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "stepwise: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "stepwise: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
