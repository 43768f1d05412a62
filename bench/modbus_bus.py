#!/usr/bin/python3
"""Bus use of the seed's PLC1 map (11 blocks, 47 registers): naive versus optimised plan.

For each plan -- the 11 blocks read as configured (`optimize: false`) and the optimiser's
plan -- this prints, per scan:
  - the transactions and the bytes on the wire, counted from the requests the peer
    (pymodbus) actually received: RTU request 8 bytes, response 5 + 2 x registers; Modbus
    TCP request 12 bytes, response 9 + 2 x registers (MBAP header included, TCP/IP not);
  - the planner's line-time estimate at 9600 baud 8N1 (from `modbridge check`);
  - the scan time measured over a socat pty (from the daemon's debug log, median and
    90th percentile), for RTU; and over Modbus TCP on loopback for comparison.

A pty has no line timing: it moves bytes as fast as the processes at both ends allow,
whatever the baud rate, so the measured pty time is the software's own cost (modbridge,
the kernel's pty, pymodbus) plus the silent interval modbridge keeps before each request
(3.5 characters, 3.6 ms at 9600 baud: a real sleep), and NOT the time on a real 9600-baud
line. That time comes from
the planner's model; both are printed side by side so neither is mistaken for the other.

Usage: bench/modbus_bus.py [SCANS]   (default 20 per plan; needs build/modbridge)
"""
import collections
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("MODBRIDGE_BIN", os.path.join(ROOT, "build", "modbridge"))
import harness  # noqa: E402

STARTS = "1;10;55;69;72;100;120;130;152;160;170"
COUNTS = "1;3;2;2;9;10;5;4;3;7;1"
# device id -> (unit on the RTU line or None for TCP, optimize)
DEVICES = {"rtu-naive": (3, False), "rtu-optimised": (1, True),
           "tcp-naive": (None, False), "tcp-optimised": (None, True)}
READ_RE = re.compile(r"debug: device (\S+): read in ([\d.]+) ms with (\d+) request")
CHECK_RE = re.compile(r"device (\S+): every .*-> (\d+) requests? per poll.*?(?:, (\d+) bytes, ([\d.]+) ms)?$",
                      re.M)


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def wire_bytes(count, tcp):
    """Bytes of one read of count registers: request + response frames."""
    return (12 + 9 if tcp else 8 + 5) + 2 * count


def main():
    scans = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with harness.Workdir("bench-bus") as wd:
        pty = harness.PtyPair(wd)
        pty.start()
        identity = {"holding": {"identity": 2000}}
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": identity, "3": identity}},
            {"tcp": "127.0.0.1:0", "units": {"1": identity, "3": identity}}]})
        sim.start()
        lines = []
        for dev_id, (unit, optimize) in DEVICES.items():
            address = unit if unit else '"127.0.0.1:%d"' % sim.tcp_ports[1]
            unit_id = "" if unit else ", unit_id: %d" % (3 if not optimize else 1)
            lines.append(f'    - {{ id: {dev_id}, address: {address}{unit_id}, start: "{STARTS}", '
                         f'count: "{COUNTS}", period: 1s, optimize: {str(optimize).lower()} }}')
        config = (f"gateway: {{ imei: \"BENCH\" }}\nserial:\n  - {{ name: com2, device: {pty.a}, "
                  f"baudrate: 9600 }}\nmodbus:\n  devices:\n" + "\n".join(lines) +
                  f"\nlogger:\n  store: {wd.path}/store.db\nmqtt:\n  enabled: false\n")
        daemon = harness.Daemon(wd, config)
        out = daemon.run_cli("check", "-c", daemon.config_path)
        assert out.returncode == 0, out.stderr
        estimate = {m.group(1): (int(m.group(2)), m.group(3), m.group(4))
                    for m in CHECK_RE.finditer(out.stdout)}

        daemon.start()

        def measured():
            got = collections.defaultdict(list)
            for m in READ_RE.finditer(daemon.log()):
                got[m.group(1)].append((float(m.group(2)), int(m.group(3))))
            return got
        # The first scan of each device opens its link: leave it out.
        harness.wait_until(lambda: all(len(measured()[d]) >= scans + 1 for d in DEVICES),
                           scans * 2 + 30, "%d scans of each plan" % scans)
        daemon.stop()
        times = measured()

        # What reached the peer, per unit and server, grouped into scans (one per second).
        per_scan = collections.defaultdict(lambda: collections.defaultdict(list))
        for r in sim.requests():
            per_scan[(r["server"], r["unit"])][int(r["t"])].append(r["count"])
        sim.stop()
        pty.stop()

    keys = {"rtu-naive": (0, 3), "rtu-optimised": (0, 1), "tcp-naive": (1, 3), "tcp-optimised": (1, 1)}
    print("PLC1 map (11 blocks, 47 registers), %d scans per plan" % scans)
    print("| plan | requests/scan | bytes on the wire/scan | planner estimate at 9600 8N1 "
          "| measured scan p50 | p90 |")
    print("|---|---|---|---|---|---|")
    for dev_id in DEVICES:
        scans_seen = list(per_scan[keys[dev_id]].values())[1:scans + 1]
        reqs = statistics.median(len(s) for s in scans_seen)
        tcp = dev_id.startswith("tcp")
        wire = statistics.median(sum(wire_bytes(c, tcp) for c in s) for s in scans_seen)
        ms = [t for t, _ in times[dev_id][1:scans + 1]]
        est = estimate.get(dev_id)
        est_text = "%s ms (%s bytes)" % (est[2], est[1]) if est and est[2] else "-"
        where = "pty" if dev_id.startswith("rtu") else "loopback TCP"
        print("| %s | %d | %d | %s | %.1f ms (%s) | %.1f ms |" % (
            dev_id, reqs, wire, est_text, percentile(ms, 50), where, percentile(ms, 90)))
    print("\nA pty has no line timing: the measured RTU times are software cost plus the "
          "3.6 ms silent interval kept before each request; the line time at 9600 baud is the "
          "planner's estimate.")


if __name__ == "__main__":
    main()
