#!/usr/bin/python3
"""Scenario: RTU line timing settings and the bus-time planner's warnings.

- `silent_interval_ms: 150` on a port: consecutive requests on the line reach the peer at
  least that far apart (for slow slaves that need a long quiet line before a request).
  The planner counts that silence in each request's cost, so it merges PLC1's map into 2
  requests (1..12 + 55..170 would need 3 gaps more than reading 42 registers of gap).
- `modbridge check` warns, naming the port's line, when a schedule cannot fit on a line
  (the seed's PLC1 map every 250 ms at 9600 baud), and when it fits on average but not
  when every device is due at once; both are warnings: check still succeeds.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

STARTS = "1;10;55;69;72;100;120;130;152;160;170"
COUNTS = "1;3;2;2;9;10;5;4;3;7;1"


def main():
    with harness.Workdir("linetiming") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "units": {"1": {"holding": {"identity": 2000}}}}]})
        sim.start()
        config = f"""\
gateway: {{ imei: "LINE" }}
serial:
  - name: com2
    device: {pty.a}
    silent_interval_ms: 150
modbus:
  devices:
    - {{ id: plc1, address: 1, start: "{STARTS}", count: "{COUNTS}", period: 2s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "LINE/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        harness.wait_until(lambda: len(sub.messages()) >= 2, 30, "two readings")
        assert daemon.stop() == 0
        for _, p in sub.messages():
            assert "V" in json.loads(p), p
        scans = {}
        for r in sim.requests():
            scans.setdefault(int(r["t"]), []).append(r)
        assert len(scans) >= 2, scans
        for scan in scans.values():
            assert [(r["addr"], r["count"]) for r in scan] == [(1, 12), (55, 116)], scan
            scan = [r["t"] for r in scan]
            gaps = [b - a for a, b in zip(scan, scan[1:])]
            # 150 ms of silence, less a little for the pty and the peer's clock reading
            assert all(g >= 0.14 for g in gaps), "requests closer than the silent interval: %r" % gaps

        # Planner warnings in check.
        over = config.replace("period: 2s", "period: 250ms").replace(
            "silent_interval_ms: 150", "baudrate: 9600")
        daemon.write_config(over)
        out = daemon.run_cli("check", "-c", daemon.config_path)
        assert out.returncode == 0, out.stderr
        assert "every 250 ms: 4 requests, 292.9 ms of line time (117.17 % of the period)" in out.stdout, out.stdout
        assert "%s:3: bus com2: the schedule cannot fit: its polls need 117 %% of the line's time" \
            % daemon.config_path in out.stderr, out.stderr

        burst = over.replace(
            f'period: 250ms }}',
            f'period: 10s }}\n    - {{ id: plc1b, address: 2, start: "{STARTS}", count: "{COUNTS}", period: 500ms }}')
        daemon.write_config(burst)
        out = daemon.run_cli("check", "-c", daemon.config_path)
        assert out.returncode == 0, out.stderr
        assert "when all devices are due at once a scan takes 585.8 ms, longer than the shortest period (500 ms)" \
            in out.stderr, (out.stdout, out.stderr)
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("line timing: OK")


if __name__ == "__main__":
    main()
