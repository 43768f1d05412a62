#!/usr/bin/env bash
# Installs what the tests need, builds and runs the whole test suite three ways, then
# checks the sources statically and fuzzes them:
#   1. a normal build (-Werror): unit + integration tests;
#   2. an ASan+UBSan build: unit + integration tests (the daemon under test is sanitized);
#   3. a ThreadSanitizer build: unit + integration tests (tests/tsan.supp);
#   4. valgrind over the unit tests;
#   5. static analysis: clang-format check, cppcheck, clang-tidy (scripts/lint.sh);
#   6. every libFuzzer target for FUZZ_SECONDS (default 20) each (fuzz/run.sh).
# A sanitizer report in a test, or in the log of a daemon an integration test started, fails
# that test (tests/integration/harness.py). Any failure stops the script with a non-zero exit
# code. The wall time of every stage is printed at the end (docs/development.md has figures).
#
#   scripts/test.sh                  every stage, as CI (.ci/run)
#   scripts/test.sh tsan lint        only these stages (valgrind needs the normal build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}

STAGES=()
current=""
trap 'print_times' EXIT

# Every stage is a function; `stage NAME` runs stage_NAME and records its wall time.
stage() {
  current=$1
  stage_t0=$SECONDS
  echo "== $1 =="
  "stage_$1"
  STAGES+=("$(printf '%-10s %4d s' "$1" $((SECONDS - stage_t0)))")
  current=""
}

# On exit, also after a failure (set -e): the stages so far, and the one that failed.
print_times() {
  local rc=$?
  [ -n "$current" ] && STAGES+=("$(printf '%-10s %4d s  FAILED' "$current" $((SECONDS - stage_t0)))")
  [ "${#STAGES[@]}" -gt 0 ] || return 0
  echo "== stage wall times (JOBS=$JOBS) =="
  printf '  %s\n' "${STAGES[@]}"
  printf '  %-10s %4d s\n' total "$SECONDS"
  return $rc
}

# Builds one configuration in build-DIR and runs all its tests.
build_and_ctest() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS")
}

stage_deps() {
  bash scripts/install-deps.sh
}

stage_normal() {
  build_and_ctest build -DCMAKE_BUILD_TYPE=RelWithDebInfo
}

stage_asan() {
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
    build_and_ctest build-asan -DCMAKE_BUILD_TYPE=Debug -DMODBRIDGE_SANITIZE=ON
}

# RelWithDebInfo: TSan wants optimised code (and it is what we ship); -g names the lines.
stage_tsan() {
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp" \
    build_and_ctest build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODBRIDGE_TSAN=ON
}

stage_valgrind() {
  local t
  for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    echo "valgrind $(basename "$t")"
    MODBRIDGE_TESTDATA="$ROOT/tests/data" valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --track-origins=yes "$t" >/dev/null
  done
}

stage_lint() {
  bash scripts/lint.sh
}

stage_fuzz() {
  bash fuzz/run.sh "${FUZZ_SECONDS:-20}"
}

ALL=(deps normal asan tsan valgrind lint fuzz)
[ $# -gt 0 ] || set -- "${ALL[@]}"
for s in "$@"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { echo "test.sh: no stage '$s' (stages: ${ALL[*]})" >&2; exit 2; }
done
for s in "$@"; do stage "$s"; done
echo "== all test stages passed =="
