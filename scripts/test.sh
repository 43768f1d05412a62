#!/usr/bin/env bash
# Installs what the tests need, builds and runs the whole test suite three ways, then
# checks the sources statically and fuzzes them:
#   1. a normal build (-Werror): unit + integration tests;
#   2. an ASan+UBSan build: unit + integration tests (the daemon under test is sanitized);
#   3. a ThreadSanitizer build: unit + integration tests (tests/tsan.supp);
#   4. every libFuzzer target for FUZZ_SECONDS (default 20) each (fuzz/run.sh), in the
#      background while 5 and 6 run;
#   5. valgrind over the unit tests;
#   6. static analysis: clang-format check, cppcheck, clang-tidy (scripts/lint.sh).
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
# Integration tests mostly wait (for the broker, the simulator, time-outs): twice as many at
# once as there are cores halves their wall time, with no failure in our runs. Not under
# TSan: its daemon needs several times the CPU, and test_crash_loop's 40 devices polled
# every second then miss instants (docs/development.md).
CTEST_JOBS=${CTEST_JOBS:-$((JOBS * 2))}
TSAN_CTEST_JOBS=${TSAN_CTEST_JOBS:-$JOBS}

# fuzz runs one libFuzzer process at a time, so it uses one core: it runs in the background,
# next to valgrind (one core) and lint, its output printed when it ends. The test suites
# run alone: their timing tests must not compete for the cores.
BACKGROUND=" fuzz "
LOGS=$ROOT/build-logs
STAGES=()
BG_NAMES=()
BG_PIDS=()
current=""
trap 'finish' EXIT

stage_time() { # NAME SECONDS [NOTE]
  STAGES+=("$(printf '%-10s %4d s  %s' "$1" "$2" "${3:-}")")
}

# `stage NAME` runs stage_NAME (in the background if listed in BACKGROUND) and records its
# wall time.
stage() {
  if [[ "$BACKGROUND" == *" $1 "* ]]; then
    mkdir -p "$LOGS"
    echo "== $1 (in the background; output when it ends) =="
    (
      t0=$SECONDS
      trap 'echo $((SECONDS - t0)) >"$LOGS/$1.time"' EXIT
      "stage_$1"
    ) >"$LOGS/$1.log" 2>&1 &
    BG_NAMES+=("$1")
    BG_PIDS+=("$!")
    return
  fi
  current=$1
  stage_t0=$SECONDS
  echo "== $1 =="
  "stage_$1"
  stage_time "$1" $((SECONDS - stage_t0))
  current=""
}

# Waits for the background stages, prints their output; returns non-zero if one failed.
collect_background() {
  local i rc status=0
  for i in "${!BG_PIDS[@]}"; do
    rc=0
    wait "${BG_PIDS[$i]}" || rc=$?
    echo "== ${BG_NAMES[$i]} (background) output =="
    cat "$LOGS/${BG_NAMES[$i]}.log"
    stage_time "${BG_NAMES[$i]}" "$(cat "$LOGS/${BG_NAMES[$i]}.time")" \
      "(background)$([ $rc -eq 0 ] || echo " FAILED")"
    [ $rc -eq 0 ] || status=$rc
  done
  BG_NAMES=()
  BG_PIDS=()
  return $status
}

# On exit, also after a failure (set -e): the background stages' results, then the wall
# time of every stage so far, including the one that failed.
finish() {
  local rc=$?
  [ -z "$current" ] || stage_time "$current" $((SECONDS - stage_t0)) FAILED
  collect_background || rc=$?
  if [ "${#STAGES[@]}" -gt 0 ]; then
    echo "== stage wall times (JOBS=$JOBS, CTEST_JOBS=$CTEST_JOBS, TSAN_CTEST_JOBS=$TSAN_CTEST_JOBS) =="
    printf '  %s\n' "${STAGES[@]}"
    printf '  %-10s %4d s\n' total "$SECONDS"
  fi
  [ $rc -eq 0 ] && echo "== all test stages passed =="
  exit $rc
}

# Builds one configuration in DIR and runs all its tests, CTEST_JOBS at once.
build_and_ctest() {
  local dir=$1 ctest_jobs=$2
  shift 2
  cmake -S . -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS"
  (cd "$dir" && ctest --output-on-failure -j "$ctest_jobs")
}

stage_deps() {
  bash scripts/install-deps.sh
}

stage_normal() {
  build_and_ctest build "$CTEST_JOBS" -DCMAKE_BUILD_TYPE=RelWithDebInfo
}

stage_asan() {
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
    build_and_ctest build-asan "$CTEST_JOBS" -DCMAKE_BUILD_TYPE=Debug -DMODBRIDGE_SANITIZE=ON
}

# RelWithDebInfo: TSan wants optimised code (and it is what we ship); -g names the lines.
stage_tsan() {
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp" \
    build_and_ctest build-tsan "$TSAN_CTEST_JOBS" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODBRIDGE_TSAN=ON
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

ALL=(deps normal asan tsan fuzz valgrind lint)
[ $# -gt 0 ] || set -- "${ALL[@]}"
for s in "$@"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { echo "test.sh: no stage '$s' (stages: ${ALL[*]})" >&2; exit 2; }
done
for s in "$@"; do stage "$s"; done
