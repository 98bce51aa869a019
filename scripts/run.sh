#!/usr/bin/env bash
# Installs what is missing, builds, and starts stepwise-server on the default
# bundle (rules/) with the embedded audit log (./stepwise-audit), printing how
# to call it. Stop it with Ctrl-C (it drains in-flight calls, then exits).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target stepwise stepwise-server

cat <<MSG

stepwise is starting on 127.0.0.1:50051 (metrics on 127.0.0.1:9464/metrics).
Call it from another terminal:

  build/tools/stepwise call 127.0.0.1:50051 tests/tools/testdata/request.json

or, with grpcurl (server reflection is on, no proto files needed):

  grpcurl -plaintext -d @ 127.0.0.1:50051 stepwise.v1.DecisionService/Evaluate \\
    < tests/tools/testdata/request.json

Check the audit chain at any time:  build/tools/stepwise audit verify stepwise-audit

MSG
exec build/service/stepwise-server --bundle rules --audit-dir stepwise-audit "$@"
