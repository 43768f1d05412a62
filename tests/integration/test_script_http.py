#!/usr/bin/python3
"""Scenario: transformer scripts in http mode (logger.mode: http), checked at an HTTP recorder.

The seed's two PLCs on one RTU line (socat pty pair, pymodbus), MQTT off.
1. examples/scripts/influx.lua: each reading arrives as one POST whose body is its InfluxDB
   line, with the register values of the seed, at http.url.
2. A script giving messages their own path (uplink_http.h, docs/scripts.md): device 1's
   reading goes to http.url as it is; device 2's reading goes to a path relative to
   http.url ("devices/2?unit=raw": appended to its path, the queries joined) and a second
   message to an absolute path with a space and a '#', which arrive percent-encoded.
Nothing stays in the store, and no reading falls back to the default format.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
from test_script_examples import EXAMPLES, IMEI, PLC2  # noqa: E402

PATHS_LUA = """\
function transform(msg)
  if msg.ID ~= "2" or msg.ERR then
    return msg
  end
  return {
    modbridge.message(msg, "devices/" .. msg.ID .. "?unit=raw"),
    modbridge.message("v=" .. msg.V[1], "/absolute/path p#1"),
  }
end
"""


def config(wd, pty, rec, script):
    return f"""\
gateway:
  imei: "{IMEI}"
serial:
  - name: com2
    device: {pty.a}
    baudrate: 9600
    timeout_ms: 1000
modbus:
  devices:
    - id: "1"
      serial: com2
      address: 1
      command: 3
      start: 10
      count: 3
      period: 1s
    - id: "2"
      serial: com2
      address: 2
      command: 3
      start: 10
      count: 5
      period: 1s
logger:
  mode: http
  store: {wd.path}/store.db
  script: {script}
mqtt:
  enabled: false
http:
  url: {rec.url}?token=abc
  method: post
  timeout_ms: 3000
"""


def run(wd, pty, rec, script, name, want):
    """Runs the daemon until want(requests) holds; returns the requests and `queue`."""
    with rec.lock:
        rec.requests.clear()
    daemon = harness.Daemon(wd, config(wd, pty, rec, script), name=name)
    check = daemon.run_cli("check", "-c", daemon.config_path)
    assert check.returncode == 0, check.stdout + check.stderr
    daemon.start()
    harness.wait_until(lambda: want(list(rec.requests)), 30, f"the requests of {name}")
    assert daemon.stop() == 0
    assert "readings are kept in the default format" not in daemon.log(), daemon.log()
    queue = daemon.run_cli("queue", "-c", daemon.config_path)
    assert queue.returncode == 0, queue.stderr
    os.remove(str(wd.path) + "/store.db")
    return list(rec.requests), queue.stdout


def main():
    with harness.Workdir("script-http") as wd:
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 200}},
                       "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}}]})
        sim.start()
        rec = servers.HttpRecorder(wd)
        rec.start()

        # 1. InfluxDB line protocol as the body of each POST to http.url.
        def two_each(reqs):
            bodies = [r["body"] for r in reqs]
            return all(sum(b"device=%s " % d in b for b in bodies) >= 2 for d in (b"1", b"2"))
        reqs, queue = run(wd, pty, rec, os.path.join(EXAMPLES, "influx.lua"), "influx", two_each)
        for r in reqs:
            assert (r["method"], r["path"], r["query"]) == ("POST", "/ingest", {"token": ["abc"]}), r
            line = r["body"].decode()
            m = re.match(r"modbus,imei=%s,device=(\d) (\S+) (\d{19})$" % IMEI, line)
            assert m, line
            fields = {"1": "r10=10i,r11=11i,r12=12i",
                      "2": ",".join(f"r{a}={v}i" for a, v in sorted(PLC2.items()))}[m.group(1)]
            assert m.group(2) == fields, line
        assert re.search(r"^backlog\s+0$", queue, re.M), queue
        print(f"  influx.lua: {len(reqs)} POSTs of line protocol, e.g. {reqs[-1]['body']!r}")

        # 2. Messages with their own paths.
        script = os.path.join(str(wd.path), "paths.lua")
        with open(script, "w", encoding="utf-8") as f:
            f.write(PATHS_LUA)

        def three_each(reqs):
            paths = [r["path"] for r in reqs]
            return all(paths.count(p) >= 3 for p in
                       ("/ingest", "/ingest/devices/2", "/absolute/path%20p%231"))
        reqs, queue = run(wd, pty, rec, script, "paths", three_each)
        seen = {}
        for r in reqs:
            seen.setdefault(r["path"], []).append(r)
            if r["path"] == "/ingest":
                body = json.loads(r["body"])
                assert body["ID"] == "1" and body["V"] == [10, 11, 12], body
                assert r["query"] == {"token": ["abc"]}, r
            elif r["path"] == "/ingest/devices/2":
                body = json.loads(r["body"])
                assert body["ID"] == "2" and body["V"] == [10, 11, 12, 0, 0], body
                assert r["query"] == {"token": ["abc"], "unit": ["raw"]}, r
            else:
                assert r["path"] == "/absolute/path%20p%231", r
                assert (r["body"], r["query"]) == (b"v=10", {}), r
        assert re.search(r"^backlog\s+0$", queue, re.M), queue
        print("  own paths: " + ", ".join(f"{p} x{len(v)}" for p, v in sorted(seen.items())))
    print("test_script_http: OK")


if __name__ == "__main__":
    main()
