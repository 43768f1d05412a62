#!/usr/bin/python3
"""Scenario: every instant of every device yields exactly one message, also when reads take
longer than the period.

All devices are read every second.
  - TCP pool: "silent" never answers (time-out 1000 ms, retries 1: a poll costs 2 s, then
    back-off), "slow" answers 1.1 s late, "ok" answers at once.
  - One RTU line: "rtuslow" (slave 1) answers 1.1 s late and is listed first, so "rtuok"
    (slave 2), behind it on the same line, waits a whole period for the line every other
    second.
Halfway, the slow TCP peer (a simulator of its own) is restarted answering at once, so the
slow device's episode ends.

Checked at the subscriber: for each device, one message for every instant from its first to
its last, never two, in instant order; ERR "skipped: previous read still running" for the
instants a device's own read overran, "skipped: bus busy" for those rtuok could not be read
in; and in the log, "read took longer than its period" once per device and episode, "reads
fit their period again" once when the slow device recovers. `check` warns about the devices
whose worst-case read (time-out x attempts x requests) is not shorter than their period.
"""
import collections
import calendar
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OVERRAN = "skipped: previous read still running"
BUSY = "skipped: bus busy"
NOT_POLLED = "not polled: device down (last error: timeout)"
DEVICES = ("silent", "slow", "ok", "rtuslow", "rtuok")


def instant(msg):
    return calendar.timegm(time.strptime(msg["TS"], "%Y-%m-%dT%H:%M:%SZ"))


def main():
    with harness.Workdir("overrun") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:0", "units": {"1": {"silent": True}}},
            {"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"identity": 100}}}},
            {"rtu": pty.b, "baudrate": 9600,
             "units": {"1": {"holding": {"identity": 100}, "delay_ms": 1100},
                       "2": {"holding": {"identity": 100}}}},
        ]})
        sim.start()
        silent_port, ok_port, _ = sim.tcp_ports
        slow_sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"identity": 100},
                                                   "delay_ms": 1100}}}]}, name="slowsim")
        slow_sim.start()
        config = f"""\
gateway: {{ imei: "OVR" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 3000 }}
modbus:
  devices:
    - {{ id: silent, address: "127.0.0.1:{silent_port}", start: 0, count: 2, period: 1s, timeout_ms: 1000, retries: 1 }}
    - {{ id: slow, address: "127.0.0.1:{slow_sim.port}", start: 0, count: 2, period: 1s, timeout_ms: 3000, retries: 0 }}
    - {{ id: ok, address: "127.0.0.1:{ok_port}", start: 5, count: 2, period: 1s, timeout_ms: 400 }}
    - {{ id: rtuslow, address: 1, start: 0, count: 2, period: 1s, retries: 0 }}
    - {{ id: rtuok, address: 2, start: 5, count: 2, period: 1s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "OVR/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()

        def msgs(dev):
            return [m for m in (json.loads(p) for _, p in sub.messages()) if m["ID"] == dev]
        harness.wait_until(lambda: len(msgs("ok")) >= 22, 60, "22 instants of the ok device")

        # The slow TCP peer answers at once from now on: its episode must end.
        slow_sim.config["servers"][0]["units"]["1"]["delay_ms"] = 0
        slow_sim.restart()
        recovered_from = len(msgs("slow"))
        harness.wait_until(lambda: sum("V" in m for m in msgs("slow")[recovered_from:]) >= 8,
                           40, "eight readings of the slow device after its peer recovered")
        harness.wait_until(lambda: len(msgs("silent")) >= 36, 30, "36 instants of the silent device")
        # The episode ends after 10 s of reads within their period.
        daemon.wait_log(r"device slow: reads fit their period again", 20)
        assert daemon.stop() == 0

        # One message per instant, per device, in instant order.
        report, problems = [], []
        for dev in DEVICES:
            got = [instant(m) for m in msgs(dev)]
            counts = collections.Counter(got)
            span = range(min(got), max(got) + 1)
            missing = [t for t in span if counts[t] == 0]
            doubled = sorted(t for t, n in counts.items() if n > 1)
            report.append("%s: %d instants, %d missing, %d doubled"
                          % (dev, len(span), len(missing), len(doubled)))
            if missing or doubled:
                problems.append("%s: missing %r, doubled %r" % (dev, missing, doubled))
            if got != sorted(got):
                problems.append("%s: messages out of instant order: %r" % (dev, got))
        total = sum(int(r.split(": ")[1].split()[0]) for r in report)
        missing_total = sum(int(r.split(", ")[1].split()[0]) for r in report)
        print("overrun: %d of %d instants missing; %s" % (missing_total, total, "; ".join(report)))
        assert not problems, "\n".join(problems)

        reasons = {dev: collections.Counter(m.get("ERR") for m in msgs(dev)) for dev in DEVICES}
        # The healthy TCP device is never held up; rtuok only by the slow device on its line.
        assert set(reasons["ok"]) == {None}, reasons
        assert set(reasons["rtuok"]) == {None, BUSY} and reasons["rtuok"][BUSY] >= 5, reasons
        # Slow devices: a reading, then an ERR for the instant their read overran.
        assert set(reasons["rtuslow"]) == {None, OVERRAN}, reasons
        assert reasons["rtuslow"][OVERRAN] >= 10, reasons
        slow = msgs("slow")
        before = collections.Counter(m.get("ERR") for m in slow[:recovered_from])
        assert before[OVERRAN] >= 5, before
        # After the restart (one poll may fail on the closed connection) every instant reads.
        tail = slow[recovered_from:]
        first_ok = next(i for i, m in enumerate(tail) if "V" in m)
        assert all("V" in m for m in tail[first_ok + 1:]), tail
        assert all(m.get("V") == [0, 1] for m in slow + msgs("rtuslow") if "V" in m)
        assert all(m.get("V") == [5, 6] for m in msgs("ok") + msgs("rtuok") if "V" in m)
        # The silent device: its time-outs, the instants they overran, and back-off skips.
        assert set(reasons["silent"]) == {"timeout", OVERRAN, NOT_POLLED}, reasons

        log = daemon.log()
        for dev in ("silent", "slow", "rtuslow"):
            assert log.count("device %s: read took longer than its period" % dev) == 1, \
                (dev, [line for line in log.splitlines() if "device %s:" % dev in line])
        assert log.count("device rtuok: its bus was busy for a whole period") == 1, log
        assert log.count("device slow: reads fit their period again") == 1, log
        for dev in ("silent", "rtuslow", "rtuok", "ok"):
            assert "device %s: reads fit their period again" % dev not in log, log
        noted = [line for line in log.splitlines() if "device ok" in line and " debug: " not in line]
        assert not noted, noted  # the healthy device is never late, down or skipped

        # check warns, naming the device's line, for the devices whose worst case overruns.
        out = daemon.run_cli("check", "-c", daemon.config_path)
        assert out.returncode == 0, out.stderr
        path = daemon.config_path
        for line, dev, bus, worst in (
                (6, "silent", "127.0.0.1:%d" % silent_port,
                 "up to 2000 ms (time-out 1000 ms x 2 attempts x 1 request)"),
                (7, "slow", "127.0.0.1:%d" % slow_sim.port,
                 "up to 3000 ms (time-out 3000 ms x 1 attempt x 1 request)"),
                (9, "rtuslow", "com2", "up to 3000 ms (time-out 3000 ms x 1 attempt x 1 request)")):
            expected = ("%s:%d: bus %s: device %s: a read can take %s, not shorter than its "
                        "period (1 s): instants will be skipped (warning)"
                        % (path, line, bus, dev, worst))
            assert expected in out.stderr, (expected, out.stderr)
        assert "device ok:" not in out.stderr, out.stderr
        assert "a device that does not answer costs up to 2000 ms per poll" in out.stdout, out.stdout
        sub.stop()
        sim.stop()
        slow_sim.stop()
        pty.stop()
        broker.stop()
    print("overrun: OK (one message per instant for every device; overruns logged once per "
          "episode; check warns for TCP devices)")


if __name__ == "__main__":
    main()
