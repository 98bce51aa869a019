#!/usr/bin/env bash
# Runs every test: installs missing packages, builds everything (engine,
# service, CLI, tests, benchmarks) and runs the whole suite with CTest.
#
#   scripts/test.sh                   # the suite CI runs
#   scripts/test.sh --sanitize address   # the same under ASan + UBSan
#   scripts/test.sh --sanitize thread    # the same under TSan
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
if [ "${1:-}" = "--sanitize" ]; then
  sanitize="${2:?--sanitize takes address or thread}"
fi

scripts/deps.sh

build="build"
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ -n "$sanitize" ]; then
  build="build-$sanitize"
  args+=(-DSTEPWISE_SANITIZE="$sanitize" -DSTEPWISE_BUILD_BENCH=OFF)
fi

if [ "$sanitize" = "address" ]; then
  # Third-party leaks only, each explained in the file.
  export LSAN_OPTIONS="suppressions=$(pwd)/tests/sanitizers/lsan.supp:print_suppressions=0"
fi

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S . -B "$build" -G Ninja "${args[@]}" > /dev/null
cmake --build "$build" -j "$jobs"
# The tests' scratch files (tests/CMakeLists.txt: STEPWISE_TEST_TMPDIR):
# emptied before the run and after one that passes, kept after a failure.
# (Some tests take permissions away from a folder; give them back first.)
scratch="$build/test-tmp"
empty_scratch() {
  chmod -R u+rwX "$scratch" 2> /dev/null || true
  find "$scratch" -mindepth 1 -delete
}
mkdir -p "$scratch"
empty_scratch
if ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600; then
  empty_scratch
else
  echo "scripts/test.sh: a test failed; its scratch files are in $scratch" >&2
  exit 1
fi
