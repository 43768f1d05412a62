#!/usr/bin/env bash
# Builds modbridge and bench/mbsim (RelWithDebInfo, in build/), then runs the benchmarks
# and writes their tables into docs/performance.md. Options go to bench/bench.py
# (--help lists them); `bench/run.sh --quick` takes about 3 minutes, the default about 20.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target modbridge mbsim script_bench >/dev/null
exec /usr/bin/python3 bench/bench.py "$@"
