#!/usr/bin/python3
"""Scenario: the wall clock is set an hour forward, then back, while devices are read every
second; the schedule follows the new time at once in both directions.

The daemon runs with tests/sim/clockshift.c preloaded: its CLOCK_REALTIME is shifted by the
seconds written in a file, while CLOCK_MONOTONIC runs on (what NTP does on a gateway whose
clock was wrong at boot). One device on a serial line (its own thread) and one Modbus TCP
device (the pool). Checked at the subscriber and in the log:
  - forward: no ERR messages for the hour in between (3600 per device would flood the store),
    and the readings go on at every second of the new time;
  - back: the readings go on at once at every second of the new time, instead of none for an
    hour until the clock is back where it was;
  - "the wall clock moved +3600 s" and "-3600 s" are logged once each.
"""
import calendar
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SHIFT_S = 3600
DEVICES = ("rtu", "tcp")


def instant(msg):
    return calendar.timegm(time.strptime(msg["TS"], "%Y-%m-%dT%H:%M:%SZ"))


def main():
    cc = shutil.which("cc")
    if not cc:
        print("clock step: SKIPPED (no C compiler to build the clock shim)")
        sys.exit(77)
    with harness.Workdir("clockstep") as wd:
        shim = os.path.join(wd.path, "clockshift.so")
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", shim,
                        os.path.join(harness.REPO, "tests", "sim", "clockshift.c"), "-ldl"],
                       check=True)
        shift_file = os.path.join(wd.path, "shift")

        def set_shift(seconds):
            tmp = shift_file + ".tmp"
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write("%d\n" % seconds)
            os.replace(tmp, shift_file)
        set_shift(0)

        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": {"holding": {"identity": 100}}}},
            {"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"identity": 100}}}},
        ]})
        sim.start()
        config = f"""\
gateway: {{ imei: "CLK" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 300 }}
modbus:
  devices:
    - {{ id: rtu, address: 1, start: 0, count: 2, period: 1s }}
    - {{ id: tcp, address: "127.0.0.1:{sim.tcp_ports[1]}", start: 5, count: 2, period: 1s, timeout_ms: 400 }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "CLK/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        env = {"LD_PRELOAD": shim, "CLOCKSHIFT_FILE": shift_file}
        # An ASan build wants its runtime first in the list of libraries.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                     "verify_asan_link_order=0"]))
        daemon.start(env=env)

        def msgs(dev):
            return [m for m in (json.loads(p) for _, p in sub.messages()) if m["ID"] == dev]

        def readings_after(t0, t1):
            return min(sum(t0 <= instant(m) < t1 and "V" in m for m in msgs(d)) for d in DEVICES)
        real0 = time.time()
        harness.wait_until(lambda: readings_after(0, real0 + 600) >= 3, 30,
                           "three readings of each device")

        set_shift(SHIFT_S)
        harness.wait_until(lambda: readings_after(real0 + SHIFT_S - 60, real0 + SHIFT_S + 600) >= 4,
                           20, "four readings of each device an hour ahead")

        set_shift(0)
        back = time.time()
        harness.wait_until(lambda: readings_after(back - 2, back + 600) >= 4, 20,
                           "four readings of each device after the clock was set back")
        daemon.wait_log(r"the wall clock moved \+(3599|3600) s", 5)
        daemon.wait_log(r"the wall clock moved -(3599|3600) s", 5)
        assert daemon.stop() == 0

        for dev in DEVICES:
            got = msgs(dev)
            assert all(m.get("V") == ([0, 1] if dev == "rtu" else [5, 6]) for m in got), \
                "%s: no ERR expected, the clock steps are not skipped instants: %r" % (dev, got)
            stamps = [instant(m) for m in got]
            # Three runs of consecutive seconds: before, an hour ahead, and back again.
            runs, start = [], 0
            for k in range(1, len(stamps) + 1):
                if k == len(stamps) or stamps[k] != stamps[k - 1] + 1:
                    runs.append(stamps[start:k])
                    start = k
            assert len(runs) == 3, "%s: %r" % (dev, [(r[0], len(r)) for r in runs])
            assert SHIFT_S - 5 <= runs[1][0] - runs[0][-1] <= SHIFT_S + 5, runs
            assert -SHIFT_S - 5 <= runs[2][0] - runs[1][-1] <= -SHIFT_S + 5, runs
        log = daemon.log()
        assert len([l for l in log.splitlines() if "the wall clock moved" in l]) == 2, log
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("clock step: OK (an hour forward and back: the schedule follows at once, no ERR flood)")


if __name__ == "__main__":
    main()
