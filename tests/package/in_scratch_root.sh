#!/bin/bash
# Runs inside the scratch root that check_deb.sh makes (chroot, private mounts): installs
# the package with its maintainer scripts and checks what they did. Argument: the .deb.
set -euo pipefail
DEB=$1
CONF=/etc/modbridge/modbridge.yaml
fail=0
bad() {
  echo "FAIL: $*" >&2
  fail=1
}
ok() { echo "ok: $*"; }
expect() { # WHAT WANT GOT
  [ "$2" = "$3" ] && ok "$1: $3" || bad "$1: '$3', expected '$2'"
}
export DEBIAN_FRONTEND=noninteractive
as_user=(setpriv --reuid=modbridge --regid=modbridge --init-groups --)

# wait_log FILE REGEX SECONDS
wait_log() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -Eq "$2" "$1" && return 0
    sleep 0.1
  done
  echo "--- $1:" >&2
  cat "$1" >&2
  return 1
}

getent passwd modbridge >/dev/null && bad "a modbridge user exists before the install"
dpkg -i "$DEB" >/tmp/dpkg.log 2>&1 || {
  cat /tmp/dpkg.log >&2
  exit 1
}
ok "dpkg -i"

# The user and the files.
IFS=: read -r _ _ uid gid _ home shell <<<"$(getent passwd modbridge)"
[ "$uid" -lt 1000 ] && ok "modbridge is a system user (uid $uid)" || bad "uid $uid"
expect "home" /var/lib/modbridge "$home"
expect "shell" /usr/sbin/nologin "$shell"
expect "primary group" modbridge "$(getent group "$gid" | cut -d: -f1)"
groups=" $(id -nG modbridge) "
[[ "$groups" == *" dialout "* ]] && ok "modbridge is in dialout" || bad "groups:$groups"
expect "/var/lib/modbridge" "modbridge:modbridge 750" "$(stat -c '%U:%G %a' /var/lib/modbridge)"
expect "$CONF" "root:modbridge 640" "$(stat -c '%U:%G %a' $CONF)"
expect "/usr/sbin/modbridge" "root:root 755" "$(stat -c '%U:%G %a' /usr/sbin/modbridge)"
[ -L /etc/systemd/system/multi-user.target.wants/modbridge.service ] &&
  ok "the unit is enabled" || bad "the unit is not enabled"

# The unit.
if out=$(systemd-analyze verify /lib/systemd/system/modbridge.service 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify: clean"
else
  bad "systemd-analyze verify: $out"
fi
score=$(systemd-analyze security --offline=true /lib/systemd/system/modbridge.service 2>&1 |
  grep -E 'Overall exposure level' || true)
echo "systemd-analyze security: ${score:-no score}"
level=$(sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p' <<<"$score")
if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
  ok "exposure $level <= 2.0"
else
  bad "exposure '${level:-?}' (expected <= 2.0)"
fi

# The example configuration is refused, and says so.
rc=0
"${as_user[@]}" /usr/sbin/modbridge run -c $CONF >/tmp/example.log 2>&1 || rc=$?
if [ $rc -eq 2 ] && grep -q "gateway.example: this is the example configuration" /tmp/example.log; then
  ok "the example configuration is refused (exit 2)"
else
  bad "the example configuration: exit $rc: $(cat /tmp/example.log)"
fi

# Edited: it runs as modbridge, the service's way, and stores readings.
cat >$CONF <<'YAML'
# edited by check_deb.sh
modbus:
  devices:
    - { id: nowhere, address: "127.0.0.1:1", start: 0, count: 1, period: 1s }
mqtt:
  enabled: false
YAML
"${as_user[@]}" /usr/sbin/modbridge run -c $CONF >/tmp/run.log 2>&1 &
pid=$!
if wait_log /tmp/run.log 'running: 1 device' 20 && wait_log /tmp/run.log 'connection refused' 20; then
  ok "runs as modbridge with the edited configuration"
else
  bad "did not run as modbridge"
fi
sleep 1.5
kill -TERM $pid
rc=0
wait $pid || rc=$?
expect "exit status after SIGTERM" 0 "$rc"
expect "the store" "modbridge:modbridge" "$(stat -c '%U:%G' /var/lib/modbridge/store.db)"
backlog=$(/usr/sbin/modbridge queue -c $CONF | awk '$1 == "backlog" { print $2 }')
[ "${backlog:-0}" -ge 1 ] && ok "backlog $backlog" || bad "backlog '${backlog}'"

# Started as root outside systemd: it becomes modbridge by itself.
/usr/sbin/modbridge run -c $CONF >/tmp/root.log 2>&1 &
pid=$!
if wait_log /tmp/root.log 'running as user modbridge' 20 && wait_log /tmp/root.log 'running: ' 20; then
  uids=$(awk '/^Uid:/ { print $2, $3, $4 }' /proc/$pid/status)
  expect "uids of a daemon started as root" "$uid $uid $uid" "$uids"
else
  bad "started as root, it did not become modbridge"
fi
kill -TERM $pid
wait $pid || true

# An upgrade (the same package again: prerm upgrade, postinst configure <version>) keeps
# the store and the edited configuration.
dpkg -i --force-confold "$DEB" >/tmp/dpkg.log 2>&1 || {
  cat /tmp/dpkg.log >&2
  exit 1
}
again=$(/usr/sbin/modbridge queue -c $CONF | awk '$1 == "backlog" { print $2 }')
expect "backlog after the upgrade" "$backlog" "$again"
head -1 $CONF | grep -q "edited by check_deb.sh" && ok "the edited configuration is kept" ||
  bad "the configuration was replaced: $(head -3 $CONF)"
expect "$CONF after the upgrade" "root:modbridge 640" "$(stat -c '%U:%G %a' $CONF)"

# Purge: the configuration and the store go; the user stays (policy).
dpkg --purge modbridge >/tmp/dpkg.log 2>&1 || {
  cat /tmp/dpkg.log >&2
  exit 1
}
for gone in /var/lib/modbridge /etc/modbridge /usr/sbin/modbridge /lib/systemd/system/modbridge.service \
  /etc/systemd/system/multi-user.target.wants/modbridge.service; do
  [ -e "$gone" ] && bad "left after purge: $gone" || ok "purged: $gone"
done
dpkg-statoverride --list $CONF >/dev/null && bad "statoverride left after purge" || ok "statoverride removed"
getent passwd modbridge >/dev/null && ok "the modbridge user stays after purge"
exit $fail
