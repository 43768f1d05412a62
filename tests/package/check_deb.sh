#!/usr/bin/env bash
# Checks a built modbridge .deb (scripts/package.sh makes one):
#   tests/package/check_deb.sh build-deb/modbridge_0.1.0_amd64.deb
#
#  1. its file list, modes and conffiles; lintian (only the tags explained in
#     debian/modbridge.lintian-overrides may remain); mandoc -Tlint on the man pages;
#  2. as root: a real install into a scratch root, with the real maintainer scripts. The
#     scratch root is an overlay over / (so dpkg, adduser and the libraries are there) in a
#     private mount namespace, and chroot'ed into: nothing reaches this machine's /, and it
#     all goes away with the namespace. In it: the modbridge user (system, nologin, in
#     dialout), /var/lib/modbridge, the configuration's owner and mode, the unit enabled,
#     `systemd-analyze verify` and `security` on the unit, the example configuration refused
#     by the daemon run as modbridge, an edited one running, an upgrade (the same package
#     installed again) keeping the store and the edited configuration, and a purge removing
#     both.
# Exit status 0 when every check passed; each failure is printed.
set -euo pipefail
DEB=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
bad() {
  echo "FAIL: $*" >&2
  fail=1
}
ok() { echo "ok: $*"; }

# ---- 1. the archive
list=$(dpkg-deb -c "$DEB")
for want in \
  '-rwxr-xr-x root/root .* ./usr/sbin/modbridge$' \
  '-rw-r--r-- root/root .* ./etc/modbridge/modbridge.yaml$' \
  '-rw-r--r-- root/root .* ./lib/systemd/system/modbridge.service$' \
  '-rw-r--r-- root/root .* ./usr/share/man/man8/modbridge.8.gz$' \
  '-rw-r--r-- root/root .* ./usr/share/man/man5/modbridge.yaml.5.gz$' \
  '-rw-r--r-- root/root .* ./usr/share/doc/modbridge/copyright$' \
  '-rw-r--r-- root/root .* ./usr/share/doc/modbridge/operations.md.gz$'; do
  grep -Eq -- "$want" <<<"$list" && ok "in the package: $want" || bad "not in the package: $want"
done
if grep -Eq -- ' ./(var|home|tmp|usr/local)/' <<<"$list"; then
  bad "files where a package must not put them: $(grep -E ' ./(var|home|tmp|usr/local)/' <<<"$list")"
fi
ctrl=$(mktemp -d)
trap 'rm -rf "$ctrl"' EXIT
dpkg-deb -e "$DEB" "$ctrl"
[ "$(cat "$ctrl/conffiles")" = /etc/modbridge/modbridge.yaml ] &&
  ok "conffiles: /etc/modbridge/modbridge.yaml" || bad "conffiles: $(cat "$ctrl/conffiles")"
# httpd.c loads libmicrohttpd with dlopen (the web UI, the metrics): shlibs cannot see it.
deps=$(dpkg-deb -f "$DEB" Depends)
for lib in libmicrohttpd12 adduser libcurl4 liblua5.4-0 libmosquitto1 libsystemd0; do
  grep -Eq "(^|, )$lib( |,|$)" <<<"$deps" && ok "Depends: $lib" || bad "Depends lacks $lib: $deps"
done

if command -v lintian >/dev/null; then
  # --fail-on warning: errors and warnings fail; the info tags left are explained in
  # debian/modbridge.lintian-overrides (lintian then reports them as overridden).
  rc=0
  out=$(lintian --fail-on error,warning --pedantic --show-overrides "$DEB" 2>&1) || rc=$?
  out=$(grep -v 'root privileges' <<<"$out" || true)
  if [ $rc -eq 0 ]; then
    ok "lintian: clean${out:+ (}${out//$'\n'/; }${out:+)}"
  else
    bad "lintian: $out"
  fi
else
  bad "lintian is not installed (scripts/install-deps.sh)"
fi

man=$(mktemp -d)
dpkg-deb -x "$DEB" "$man"
for page in "$man"/usr/share/man/man*/modbridge*.gz; do
  # -Wwarning: STYLE notes such as "referenced manual not found" depend on the machine.
  if out=$(mandoc -Tlint -Wwarning "$page" 2>&1); then
    ok "mandoc -Tlint: $(basename "$page")"
  else
    bad "mandoc -Tlint $(basename "$page"): $out"
  fi
done
rm -rf "$man"

# ---- 2. a scratch root
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
  echo "the install into a scratch root needs root and unshare: skipped"
  exit $fail
fi
scratch=$(mktemp -d /tmp/modbridge-deb-XXXXXX)
cp "$DEB" "$scratch/modbridge.deb"
cp "$ROOT/tests/package/in_scratch_root.sh" "$scratch/"
# The overlay's upper layer and work dir are on a tmpfs of the namespace: gone with it.
if unshare --mount --propagation private bash -euc '
  s=$1
  mkdir -p "$s/layer"
  mount -t tmpfs tmpfs "$s/layer"
  mkdir -p "$s/layer/upper" "$s/layer/work" "$s/layer/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$s/layer/upper,workdir=$s/layer/work" "$s/layer/root"
  r=$s/layer/root
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  mount -t tmpfs tmpfs "$r/run"
  mount -t tmpfs tmpfs "$r/tmp"
  cp "$s/modbridge.deb" "$s/in_scratch_root.sh" "$r/tmp/"
  chroot "$r" /bin/bash /tmp/in_scratch_root.sh /tmp/modbridge.deb
' _ "$scratch"; then
  ok "install, run, upgrade and purge in a scratch root"
else
  bad "in the scratch root (above)"
fi
rm -rf "$scratch"
exit $fail
