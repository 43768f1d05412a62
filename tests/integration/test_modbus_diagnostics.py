#!/usr/bin/python3
"""Scenario: Modbus problems are reported with their cause (issue 9, items 3 and 4).

- A device that answers every read of registers 550..553 with exception 2: the log says
  the device answers, with which exception and for which registers, instead of "down:
  not answering". The ERR field keeps its documented form (docs/json-format.md).
- A Modbus TCP device address pointed at a TLS port (the broker's TLS listener, which
  resets the connection on a plain request): the log says the port speaks TLS and that
  Modbus TCP is plain TCP, once, instead of only "connection lost".
- `check` of a configuration whose serial device does not exist (a USB adapter plugged in
  later): a warning with file:line, and the summary is not a plain "OK".
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("modbus-diagnostics") as wd:
        broker = harness.Broker(wd, harness.make_pki(wd.path))
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port,
             "units": {"1": {"holding": {"identity": 1000},
                             "exception_at": {"holding": [[500, 599]]}}}},
        ]})
        sim.start()
        missing = "/dev/ttyUSB-modbridge-test-absent"
        config = f"""\
gateway: {{ imei: "IMEI-DIAG" }}
serial:
  - name: usb
    device: {missing}
modbus:
  devices:
    - {{ id: refusing, address: "127.0.0.1:{tcp_port}", start: 550, count: 4, period: 1s }}
    - {{ id: healthy, address: "127.0.0.1:{tcp_port}", start: 10, count: 2, period: 1s }}
    - {{ id: tls-port, address: "127.0.0.1:{broker.port_tls}", start: 0, count: 1, period: 1s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        daemon = harness.Daemon(wd, config)

        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0, (check.returncode, check.stderr)
        want = (f"{daemon.config_path}:4: serial[0].device: '{missing}': No such file or "
                "directory; the daemon keeps trying to open it")
        assert want in check.stderr, check.stderr
        assert not re.search(r": OK$", check.stdout, re.M), check.stdout
        assert "1 serial device(s) are not there now" in check.stdout, check.stdout

        sub = harness.Subscriber(broker, "IMEI-DIAG/logger", qos=1)
        sub.start()
        daemon.start()
        answer = daemon.wait_log(r"device refusing \(address .*\): .*", 20).group(0)
        assert answer.endswith("answers with exception 2 (illegal data address) for holding "
                               "registers 550..553"), answer
        hint = daemon.wait_log(rf"127\.0\.0\.1:{broker.port_tls}: the peer closed .*", 20).group(0)
        assert hint.endswith(f"the peer closed the connection without a Modbus answer, and "
                             f"port {broker.port_tls} speaks TLS: is this a TLS port? Modbus "
                             "TCP is plain TCP"), hint
        sub.wait_match(lambda _t, p: json.loads(p)["ID"] == "tls-port", 20)
        sub.wait_match(lambda _t, p: json.loads(p)["ID"] == "refusing", 20)
        harness.wait_until(lambda: sum(json.loads(p)["ID"] == "refusing"
                                       for _, p in sub.messages()) >= 3, 20,
                           "three readings of the refusing device")
        msgs = [json.loads(p) for _, p in sub.messages()]
        refused = [m for m in msgs if m["ID"] == "refusing"]
        assert all(m.get("ERR") == "exception 2 illegal data address" for m in refused), refused
        assert any("V" in m and "ERR" not in m for m in msgs if m["ID"] == "healthy"), msgs
        tls = [m for m in msgs if m["ID"] == "tls-port"]
        assert tls and all("ERR" in m for m in tls), tls

        log = daemon.log()
        assert "device refusing" not in "".join(l for l in log.splitlines()
                                                 if "not answering" in l), log
        # Said once per episode, not once per poll.
        assert log.count("speaks TLS: is this a TLS port?") == 1, log
        assert log.count("answers with exception 2") == 1, log
        assert daemon.stop() == 0
        sub.stop()
        sim.stop()
        broker.stop()
    print("Modbus diagnostics: OK")


if __name__ == "__main__":
    main()
