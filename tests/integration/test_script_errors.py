#!/usr/bin/python3
"""Scenario: a transformer script that fails, loops, and is replaced by a broken one.

Two devices on Modbus TCP (pymodbus), polled every second, readings published to a real
mosquitto. The script (logger.script) sends device "a" in its own shape and, for device
"b", raises an error on odd values and loops forever on even ones. Checked:
  - every reading of "b" still arrives, in the default format with its V and ERR naming
    the script's file:line, and the failure is logged once per episode;
  - the loop is stopped by the instruction budget, and device "a" keeps its 1 s rhythm
    meanwhile (no bus waits behind the loop);
  - `check` refuses a script that does not compile, with file:line (exit 1);
  - SIGHUP with that script: the reload fails with file:line and the running
    configuration (and script) stays; SIGHUP with a good one replaces it.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

IMEI = "357299070082380"

FAILING = """\
function transform(msg)
  if msg.ID == "a" then
    return { dev = "a", v = msg.V[1] }
  end
  local n = 0
  while msg.V[1] % 2 == 0 do n = n + 1 end -- line 6
  error("odd value " .. msg.V[1])
end
"""

BROKEN = """\
function transform(msg)
  return { dev = msg.ID,
end
"""

GOOD = """\
function transform(msg)
  return { replaced = true, dev = msg.ID }
end
"""


def config(wd, tcp_port, broker, script):
    return f"""\
gateway:
  imei: "{IMEI}"
modbus:
  devices:
    - {{ id: a, address: "127.0.0.1:{tcp_port}", unit_id: 1, start: 0, count: 1, period: 1s }}
    - {{ id: b, address: "127.0.0.1:{tcp_port}", unit_id: 2, start: 0, count: 2, period: 1s }}
logger:
  store: {wd.path}/store.db
  script: {script}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
"""


def main():
    with harness.Workdir("script_errors") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        # b's register 0 goes up by one at every read: odd (an error), even (a loop), ...
        sim = harness.ModbusSim(wd, {"servers": [{"tcp": "127.0.0.1:%d" % tcp_port, "units": {
            "1": {"holding": {"values": {"0": [7]}}},
            "2": {"holding": {"values": {"0": [2, 4]}}, "count_up": [0]}}}]})
        sim.start()
        script = str(wd.path) + "/t.lua"
        with open(script, "w") as f:
            f.write(FAILING)
        daemon = harness.Daemon(wd, config(wd, tcp_port, broker, script))
        sub = harness.Subscriber(broker, IMEI + "/logger", qos=1)
        sub.start()
        daemon.start()
        daemon.wait_log(r"mqtt: connected", 20)
        sub.wait_for(16, 40)
        records = sub.records()
        a = [r for r in records if '"dev":"a"' in r["payload"]]
        b = [json.loads(r["payload"]) for r in records if '"ID":"b"' in r["payload"]]
        assert len(a) >= 6 and len(b) >= 6, records
        odd = [m for m in b if m["V"][0] % 2]
        even = [m for m in b if not m["V"][0] % 2]
        assert odd and even, b
        for m in odd:
            assert re.fullmatch(r"script .*/t\.lua:7: odd value %d" % m["V"][0], m["ERR"]), m
        for m in even:
            assert re.fullmatch(r"script .*/t\.lua:6: stopped: the call ran more than 1000000 "
                                r"instructions \(an endless loop\?\)", m["ERR"]), m
        # Every reading of b is there: consecutive values, none missing.
        values = [m["V"][0] for m in b]
        assert values == list(range(values[0], values[0] + len(values))), values
        assert daemon.log().count("its readings are kept in the default format") == 1, daemon.log()
        gaps = [y["arrival"] - x["arrival"] for x, y in zip(a, a[1:])]
        assert max(gaps) < 1.9, gaps
        print(f"  {len(b)} readings of b in the default format ({len(odd)} errors, "
              f"{len(even)} endless loops stopped), e.g. ERR {even[0]['ERR']!r}; logged once; "
              f"device a every {sum(gaps) / len(gaps):.2f} s (largest gap {max(gaps):.2f} s)")

        # check refuses a script that does not compile, naming file:line.
        with open(script, "w") as f:
            f.write(BROKEN)
        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 1, check.stdout + check.stderr
        assert re.search(r"modbridge\.yaml:\d+: logger\.script: .*/t\.lua:3: unexpected "
                         r"symbol near 'end'", check.stderr), check.stderr
        # SIGHUP: the reload fails, the running script stays.
        since = daemon.log_offset()
        daemon.signal(1)
        daemon.wait_log(r"t\.lua:3: unexpected symbol near 'end'", 10, since=since)
        daemon.wait_log(r"not restarting, the running configuration stays", 10, since=since)
        sub.clear()
        msgs = sub.wait_for(4, 15)
        assert any('"dev":"a"' in p for _, p in msgs), msgs
        assert daemon.running
        # A good script: the reload replaces it.
        with open(script, "w") as f:
            f.write(GOOD)
        since = daemon.log_offset()
        daemon.signal(1)
        daemon.wait_log(r"restarting with the configuration", 10, since=since)
        daemon.wait_log(r"mqtt: connected", 20, since=since)
        sub.clear()
        msgs = sub.wait_for(4, 15)
        late = [json.loads(p) for _, p in msgs[-2:]]
        assert all(m.get("replaced") is True for m in late), late
        print("  reload: a broken script is refused with file:line and the running one kept; "
              "a good one replaces it")
        assert daemon.stop() == 0
        sub.stop()
        sim.stop()
        broker.stop()
    print("script errors: OK")


if __name__ == "__main__":
    main()
