#!/usr/bin/python3
"""Scenario: a second `modbridge run` on the same store is refused (issue 9, item 3).

A gateway polls every second and publishes at QoS 1. A second `run` with the same
configuration must exit at once with status 2 and "store <path> is in use by modbridge
(pid N)", N being the first daemon's pid, without touching the broker (before the fix it
ran beside the first: both polled and stored every reading, and they took the client id
from each other). The first daemon keeps running and no reading arrives twice. `read`,
`queue` and `at` still work beside it. After `kill -9`, the lock left behind does not
stop the next start.
"""
import collections
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    problems = []
    with harness.Workdir("second") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        store = os.path.join(wd.path, "store.db")
        config = f"""\
gateway: {{ imei: "TWICE" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {store}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: twice-gw
  qos: 1
"""
        sub = harness.Subscriber(broker, "TWICE/logger", qos=1)
        sub.start()
        first = harness.Daemon(wd, config, name="first")
        first.start()
        first.wait_log(r"running: ", 15)
        sub.wait_for(2, 20)

        second = harness.Daemon(wd, config, name="second")
        second.start()
        try:
            second.proc.wait(timeout=harness.TIMEOUT_SCALE * 10)
        except subprocess.TimeoutExpired:
            problems.append("the second daemon was still running after 10 s")
            time.sleep(5)  # let the two run side by side, to count what that costs
        rc = second.stop()
        expected = f"store {store} is in use by modbridge (pid {first.pid})"
        if rc != 2:
            problems.append(f"the second daemon exited with {rc}, not 2")
        if expected not in second.log():
            problems.append(f"the second daemon did not say {expected!r}")

        # Beside the running daemon: read, queue and at work (none of them takes the lock).
        res = first.run_cli("read", "-c", first.config_path, "2")
        if res.returncode != 0 or json.loads(res.stdout)["V"] != [10, 11, 12, 13, 14]:
            problems.append(f"read beside the daemon: {res}")
        res = first.run_cli("queue", "-c", first.config_path)
        if res.returncode != 0 or not re.search(r"^backlog\s+\d+$", res.stdout, re.M):
            problems.append(f"queue beside the daemon: {res}")
        res = first.run_cli("at", "-c", first.config_path, "ATI")
        if res.returncode != 0 or "OK" not in res.stdout:
            problems.append(f"at beside the daemon: {res}")

        n = len(sub.messages())
        sub.wait_for(n + 3, 20)
        if not first.running:
            problems.append("the first daemon stopped")
        assert first.stop() == 0
        stamps = collections.Counter(json.loads(p)["TS"] for _, p in sub.messages())
        dupes = sum(c - 1 for c in stamps.values())
        takeovers = len(re.findall(r"mqtt: connection to .* lost", first.log()))
        print(f"second instance: exit {rc}; {len(stamps)} readings, {dupes} duplicate(s); "
              f"the first daemon lost its MQTT connection {takeovers} time(s)")
        if dupes:
            problems.append(f"{dupes} reading(s) arrived twice")

        # kill -9 leaves store.db.lock behind, holding a dead pid: the next start goes on.
        first.start()
        first.wait_log(r"running: ", 15)
        first.kill9()
        if not os.path.exists(store + ".lock"):
            problems.append("no store.db.lock next to the store")
        first.start()
        try:
            first.wait_log(r"running: ", 15)
        except AssertionError as exc:
            problems.append(f"no start after kill -9: {exc}")
        first.stop()

        sub.stop()
        sim.stop()
        broker.stop()
        assert not problems, "\n".join(problems)
    print("second instance: OK")


if __name__ == "__main__":
    main()
