#!/usr/bin/env bash
# Install every build and test dependency of modbridge from Debian 12 packages.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libmodbus-dev libmosquitto-dev libsqlite3-dev libssl-dev libjansson-dev libyaml-dev
  libmicrohttpd-dev libcrypt-dev libcurl4-openssl-dev
  libcmocka-dev curl
  mosquitto mosquitto-clients openssl
  python3-pyftpdlib python3-openssl openssh-server nginx-light
  python3 python3-pymodbus python3-serial
  socat valgrind
  chromium chromium-driver python3-selenium
  clang clang-format clang-tidy cppcheck libclang-rt-14-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian package starts a system broker on port 1883; our tests and demo use their own
# brokers on free ports, so the system one is not needed, but it is harmless if running.
# openssh-server and nginx are test and bench peers (the SFTP test runs its own sshd on a free
# port; bench/uplink_drain.py its own nginx); their system services are not needed either.
