#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and runs each one for
# SECONDS (default 60), starting from its seed corpus in fuzz/corpus/<target>/. New
# interesting inputs go to build-fuzz/corpus/<target>/; crashes to build-fuzz/artifacts/.
#
#   fuzz/run.sh [SECONDS]           run every target
#   fuzz/run.sh SECONDS TARGET...   run some targets
#   fuzz/run.sh --merge             fold build-fuzz/corpus/* into fuzz/corpus/* (only inputs
#                                   that add coverage), to commit them
#
# Exit status: non-zero when a target crashes, leaks, trips a sanitizer or breaks one of
# its invariants; the reproducer is named in the output (run it: build-fuzz/fuzz/<target> FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=$ROOT/build-fuzz

cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMODBRIDGE_FUZZ=ON -DMODBRIDGE_TESTS=OFF -DMODBRIDGE_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "${JOBS:-2}" >/dev/null

# Every fuzz/fuzz_*.c is a target (fuzz/CMakeLists.txt lists the same names).
all_targets() {
  for src in "$ROOT"/fuzz/fuzz_*.c; do basename "$src" .c; done
}

if [ "${1:-}" = "--merge" ]; then
  for t in $(all_targets); do
    [ -d "$BUILD/corpus/$t" ] || continue
    mkdir -p "$ROOT/fuzz/corpus/$t"
    "$BUILD/fuzz/$t" -merge=1 "$ROOT/fuzz/corpus/$t" "$BUILD/corpus/$t" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
  done
  exit 0
fi

SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ "${#TARGETS[@]}" -gt 0 ] || mapfile -t TARGETS < <(all_targets)

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=()
for t in "${TARGETS[@]}"; do
  exe="$BUILD/fuzz/$t"
  if [ ! -x "$exe" ]; then
    echo "fuzz/run.sh: $t is not built (is it listed in fuzz/CMakeLists.txt?)" >&2
    failed+=("$t")
    continue
  fi
  mkdir -p "$BUILD/corpus/$t" "$BUILD/artifacts" "$ROOT/fuzz/corpus/$t"
  args=(-max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$BUILD/artifacts/$t-")
  [ -f "$ROOT/fuzz/$t.dict" ] && args+=(-dict="$ROOT/fuzz/$t.dict")
  echo "== $t: ${SECONDS_EACH} s"
  log="$BUILD/$t.log"
  if "$exe" "${args[@]}" "$BUILD/corpus/$t" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  else
    tail -n 60 "$log"
    echo "== $t FAILED (full log: $log)"
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz/run.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz/run.sh: all targets ran ${SECONDS_EACH} s without a finding"
