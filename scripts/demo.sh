#!/usr/bin/env bash
# The seed scenario on one machine: installs what is needed, builds modbridge, then runs it
# against simulated PLCs (PLC1 over Modbus RTU on a socat pty pair at 9600 8N1, PLC2 over
# Modbus TCP, both served by pymodbus) and a local mosquitto whose TLS listener requires
# client certificates (generated on the fly). Prints the JSON messages a subscriber gets.
# DEMO_SECONDS (default 30) sets how long it runs; Ctrl-C stops it early.
# --http: the same readings go to a local HTTPS collector (logger.mode: http) instead of
# the broker, which stays for the AT commands; the collector prints each request body.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j 2 >/dev/null
exec /usr/bin/python3 scripts/demo.py "$@"
