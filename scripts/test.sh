#!/usr/bin/env bash
# Installs what the tests need, builds the project three ways and runs the whole test suite
# on each, checks the sources statically and fuzzes them. Stages, in this order:
#   deps      scripts/install-deps.sh;
#   build     a normal build in build/, ASan+UBSan in build-asan/, TSan in build-tsan/,
#             all with -Werror (MODBRIDGE_WERROR);
#   lint      scripts/lint.sh (clang-format, cppcheck, clang-tidy, walls)       } in the
#   fuzz      every libFuzzer target for FUZZ_SECONDS (default 20) each       } background
#             (fuzz/run.sh)                                                   } (see below)
#   normal    unit + integration tests of the normal build;
#   asan      the same under ASan+UBSan (the daemon under test is sanitized);
#   tsan      the same under ThreadSanitizer (suppressions: tests/tsan.supp);
#   valgrind  the unit tests under valgrind.
# A sanitizer report in a test, or in the log of a daemon an integration test started, fails
# that test (tests/integration/harness.py). Any failure fails the script (non-zero exit
# code). The wall time of every stage is printed at the end (docs/development.md has figures).
#
# The integration tests mostly wait (for the broker, the simulator, time-outs): a suite
# leaves most of the CPU idle. So lint and fuzz (CPU-bound, no timing) run in the background
# meanwhile, at idle priority (SCHED_IDLE, else nice 19) so that the tests get the CPU the
# moment they want it; their output is printed when they end. Each suite runs 2 x JOBS
# tests at once (CTEST_JOBS, TSAN_CTEST_JOBS), except the scenarios whose assertions are
# about time (a message at every instant of a 100 ms schedule, ...): tests/CMakeLists.txt
# marks them RUN_SERIAL, so they run alone (docs/development.md, "Test stages and CI time").
#
#   scripts/test.sh                  every stage, as CI (.ci/run)
#   scripts/test.sh build tsan lint  only these stages (a suite builds its configuration)
#   JOBS=4 CTEST_JOBS=4 FUZZ_SECONDS=60 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-$((2 * JOBS))}
TSAN_CTEST_JOBS=${TSAN_CTEST_JOBS:-$((2 * JOBS))}
BACKGROUND=" lint fuzz "
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
    echo "== $1 (in the background, at idle priority; output when it ends) =="
    (
      chrt --idle -p 0 "$BASHPID" >/dev/null 2>&1 || renice -n 19 -p "$BASHPID" >/dev/null || true
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

# Waits for the background stages and prints their output; non-zero if one failed.
collect_background() {
  local i rc status=0
  for i in "${!BG_PIDS[@]}"; do
    rc=0
    wait "${BG_PIDS[$i]}" || rc=$?
    echo "== ${BG_NAMES[$i]} (background) output =="
    cat "$LOGS/${BG_NAMES[$i]}.log"
    stage_time "${BG_NAMES[$i]}" "$(cat "$LOGS/${BG_NAMES[$i]}.time" 2>/dev/null || echo 0)" \
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
  [ $rc -ne 0 ] || echo "== all test stages passed =="
  exit $rc
}

# build_config NAME: configures and builds build/, build-asan/ or build-tsan/, with -Werror.
# TSan: RelWithDebInfo, as TSan wants optimised code (and it is what we ship).
build_config() {
  local args
  case $1 in
  normal) args=(-B build -DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan) args=(-B build-asan -DCMAKE_BUILD_TYPE=Debug -DMODBRIDGE_SANITIZE=ON) ;;
  tsan) args=(-B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODBRIDGE_TSAN=ON) ;;
  esac
  cmake -S . "${args[@]}" -DMODBRIDGE_WERROR=ON >/dev/null
  cmake --build "${args[1]}" -j "$JOBS"
}

# suite NAME DIR JOBS: every test of that build, JOBS at once (it is built first if needed).
suite() {
  build_config "$1"
  (cd "$2" && ctest --output-on-failure -j "$3")
}

stage_deps() {
  bash scripts/install-deps.sh
}

stage_build() {
  build_config normal
  build_config asan
  build_config tsan
}

stage_lint() {
  bash scripts/lint.sh
}

stage_fuzz() {
  bash fuzz/run.sh "${FUZZ_SECONDS:-20}"
}

stage_normal() {
  suite normal build "$CTEST_JOBS"
}

stage_asan() {
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0" \
    suite asan build-asan "$CTEST_JOBS"
}

stage_tsan() {
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp" \
    suite tsan build-tsan "$TSAN_CTEST_JOBS"
}

stage_valgrind() {
  local t
  build_config normal
  for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    echo "valgrind $(basename "$t")"
    MODBRIDGE_TESTDATA="$ROOT/tests/data" valgrind -q --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --track-origins=yes "$t" >/dev/null
  done
}

ALL=(deps build lint fuzz normal asan tsan valgrind)
[ $# -gt 0 ] || set -- "${ALL[@]}"
for s in "$@"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || {
    echo "test.sh: no stage '$s' (stages: ${ALL[*]})" >&2
    exit 2
  }
done
for s in "$@"; do stage "$s"; done
