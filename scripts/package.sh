#!/usr/bin/env bash
# Builds the Debian package in one command:
#
#   scripts/package.sh [OUTDIR]     ->  OUTDIR/modbridge_<version>_<arch>.deb (default build-deb/)
#
# dpkg-buildpackage writes into the source tree (obj-*/, debian/modbridge/) and puts the
# .deb in the tree's parent directory, so it runs on a copy of the tracked and new files
# in OUTDIR/src. Needs debhelper and the build dependencies of debian/control
# (scripts/install-deps.sh installs them). `dpkg-buildpackage -b -us -uc` in a clean tree
# does the same, leaving the .deb next to the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-build-deb}")
rm -rf "$OUT"
mkdir -p "$OUT/src"
git ls-files -co --exclude-standard -z | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
  tar --null -cf - -T - | tar -xf - -C "$OUT/src"
(cd "$OUT/src" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" \
  dpkg-buildpackage -b -us -uc >"$OUT/build.log" 2>&1) || {
  tail -40 "$OUT/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed (log: $OUT/build.log)" >&2
  exit 1
}
rm -rf "$OUT/src"
ls "$OUT"/modbridge_*.deb
