#!/usr/bin/env bash
# Installs what the tests need, builds and runs the whole test suite three ways, then
# checks the sources statically and fuzzes them:
#   1. a normal build (-Werror): unit + integration tests;
#   2. an ASan+UBSan build: unit + integration tests (the daemon under test is sanitized);
#   3. valgrind over the unit tests;
#   4. static analysis: clang-format check, cppcheck, clang-tidy (scripts/lint.sh);
#   5. every libFuzzer target for FUZZ_SECONDS (default 20) each (fuzz/run.sh).
# Any failure stops the script with a non-zero exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}

bash scripts/install-deps.sh

echo "== normal build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS"
(cd build && ctest --output-on-failure -j "$JOBS")

echo "== ASan+UBSan build =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMODBRIDGE_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
(cd build-asan && ctest --output-on-failure -j "$JOBS")
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

echo "== valgrind (unit tests) =="
export MODBRIDGE_TESTDATA="$ROOT/tests/data"
for t in build/tests/test_*; do
  [ -x "$t" ] || continue
  echo "valgrind $(basename "$t")"
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --track-origins=yes "$t" >/dev/null
done

echo "== static analysis (scripts/lint.sh) =="
bash scripts/lint.sh

echo "== fuzzing (fuzz/run.sh, ${FUZZ_SECONDS:-20} s per target) =="
bash fuzz/run.sh "${FUZZ_SECONDS:-20}"

echo "== all test stages passed =="
