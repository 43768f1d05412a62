#!/usr/bin/env bash
# Static checks over every C file in src/, tests/, bench/ and fuzz/, each with zero findings:
#   1. clang-format 14 against .clang-format (the style);
#   2. cppcheck 2.10 (warning, style, performance, portability), suppressions with reasons
#      in scripts/lint/cppcheck.supp;
#   3. clang-tidy 14 with .clang-tidy (tests/.clang-tidy relaxes a few test idioms), on a
#      compilation database configured with clang in build-lint/;
#   4. the walls between modules (scripts/lint/walls.py): each third-party library's headers
#      included by its one module only, and the module boundaries the architecture needs.
#
#   scripts/lint.sh         check; exit status 1 on any finding
#   scripts/lint.sh --fix   reformat the files in place with clang-format, then check
#
# The tools are Debian packages (scripts/install-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}

mapfile -t FILES < <(git ls-files -co --exclude-standard -- \
  'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 'fuzz/*.[ch]' | sort)
mapfile -t C_FILES < <(printf '%s\n' "${FILES[@]}" | grep '\.c$')
status=0

if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${FILES[@]}"
  echo "lint: reformatted ${#FILES[@]} files"
fi

echo "== clang-format (${#FILES[@]} files)"
if ! clang-format --dry-run -Werror "${FILES[@]}"; then
  echo "lint: formatting differs from .clang-format; run scripts/lint.sh --fix" >&2
  status=1
fi

echo "== cppcheck"
if ! cppcheck --enable=warning,style,performance,portability --std=c11 --inline-suppr \
  --error-exitcode=1 --quiet -j "$JOBS" \
  --library="$ROOT/scripts/lint/cmocka.cfg" \
  --suppressions-list="$ROOT/scripts/lint/cppcheck.supp" \
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DMODBRIDGE_VERSION='"0"' -I src \
  --template='{file}:{line}: {severity}: {message} [{id}]' "${C_FILES[@]}"; then
  status=1
fi

echo "== clang-tidy"
# Configure only (no build): clang, so the flags are clang's; fuzz targets included.
CC=clang cmake -S . -B build-lint -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DMODBRIDGE_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
if ! printf '%s\n' "${C_FILES[@]}" |
  xargs -P "$JOBS" -n 4 clang-tidy -p build-lint --quiet 2> >(grep -v \
    -e '^[0-9]* warnings\? generated' -e '^Suppressed [0-9]* warnings' \
    -e '^Use -header-filter' -e 'NOLINT' -e '^$' >&2); then
  status=1
fi

echo "== walls between modules"
if ! python3 scripts/lint/walls.py; then
  status=1
fi

if [ "$status" -ne 0 ]; then
  echo "lint: FAILED" >&2
  exit 1
fi
echo "lint: clean"
