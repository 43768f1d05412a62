#!/usr/bin/python3
"""Scenario: array mode with a byte bound that cuts arrays short never overfills the window.

Regression for a heap overflow (issue "Close the delivery holes", item 1): the forwarder
fetched `free slots x array_max_count` readings and, when array_max_bytes cut the arrays
short, added more in-flight messages than logger.inflight_window holds. Four Modbus TCP
devices of 250 registers each (blocks "0;125", about 1.3 KB of JSON per reading) are read
every 100 ms while the broker is away for 6 s; then the broker comes. Register 0 counts
every read, so each reading is unique. With array_max_bytes
1024 every array holds one reading, so a window of 4 used to take 4 x 50 readings.

The daemon must survive (under ASan the old code aborted with heap-buffer-overflow in
publish_round) and deliver every reading it stored, in arrays of one, with no more
duplicates than a window. (That the window itself is never exceeded is checked exactly by
tests/unit/test_forward.c, which sees every message in flight.)
"""
import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEVICES = 4


def main():
    with harness.Workdir("arraywin") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 300}, "count_up": [0]}}}]})
        sim.start()
        broker = harness.Broker(wd, pki)
        broker.ports = {name: harness.free_port() for name in broker.LISTENERS}
        devices = "".join(
            f'    - {{ id: "d{i}", address: "127.0.0.1:{tcp_port}", start: "0;125", '
            f'count: "125;125", period: 100ms }}\n' for i in range(DEVICES))
        daemon = harness.Daemon(wd, f"""\
gateway: {{ imei: "ARRWIN" }}
modbus:
  devices:
{devices}logger:
  store: {wd.path}/store.db
  array: true
  array_max_bytes: 1024
  inflight_window: 4
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: arrwin-gw
""")
        t0 = time.time()
        daemon.start()
        daemon.wait_log("cannot connect", 15)
        time.sleep(6)
        broker.start()
        sub = harness.Subscriber(broker, "ARRWIN/logger", qos=1)
        sub.start()
        daemon.wait_log("mqtt: connected", 20)
        time.sleep(4)  # the backlog (about 240 readings) drains while polling goes on
        assert daemon.stop() == 0, "the daemon must exit cleanly (ASan finds nothing)"
        t1 = time.time()
        log = daemon.log()
        assert "AddressSanitizer" not in log, log[-3000:]

        def drained():
            out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
            return "backlog  0\n" in out
        # Whatever was stored at the stop is sent by a second run (at-least-once).
        if not drained():
            daemon.start()
            daemon.wait_log(r"info: running:", 20)
            harness.wait_until(drained, 60, "the backlog to drain")
            assert daemon.stop() == 0

        readings = []
        for _, payload in sub.messages():
            arr = json.loads(payload)
            # A full reading (about 1.3 KB) always travels alone; small ERR messages (an
            # instant skipped because the previous read still ran) may share an array.
            assert isinstance(arr, list) and (len(arr) == 1 or len(payload) <= 1024), \
                payload[:200]
            readings.extend(arr)
        seen = {}
        for r in readings:
            if "ERR" in r:
                continue
            assert "V" in r and len(r["V"]) == 250, r
            key = (r["ID"], r["V"][0])  # register 0 counts every read: unique
            seen[key] = seen.get(key, 0) + 1
        dups = sum(n - 1 for n in seen.values())
        per_device = {}
        for (dev, ts) in {(r["ID"], r["TS"]) for r in readings if "V" in r}:
            per_device.setdefault(dev, set()).add(
                calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")))
        # Every second of the run has readings of every device (ten per second each).
        for i in range(DEVICES):
            secs = per_device.get("d%d" % i, set())
            missing = [s for s in range(int(t0) + 2, int(t1) - 1) if s not in secs]
            assert not missing, ("d%d" % i, missing)
        # The daemon logs every reading it stores at -v: each must have arrived.
        stored = [r for r in (json.loads(m.group(1)) for m in
                              re.finditer(r"device d\d: (\{.*\})$", log, re.M)) if "V" in r]
        lost = [(r["ID"], r["V"][0]) for r in stored if (r["ID"], r["V"][0]) not in seen]
        assert not lost, "readings lost: %r" % lost[:10]
        assert len(stored) >= DEVICES * 5 * 10, len(stored)
        assert dups <= 8, "at most a window of duplicates per restart: %d" % dups

        print("array window: %d readings stored, %d received, %d duplicates"
              % (len(stored), len(readings), dups))
        sub.stop()
        broker.stop()
        sim.stop()


if __name__ == "__main__":
    main()
