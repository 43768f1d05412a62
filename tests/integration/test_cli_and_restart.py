#!/usr/bin/python3
"""Scenario: the command line, start-up failures, and SIGTERM keeping stored readings.

- --help, usage errors, `check` on a file with many mistakes (all reported as
  file:line: key: message, exit 1), `read` of an unknown device, `run` refusing a bad
  config or an unopenable store (exit 2, clear message).
- The daemon runs while no broker listens: readings go to the store. SIGTERM stops it
  cleanly (exit 0) and `queue` shows the backlog. After a restart with the broker up, every
  stored reading arrives, followed by new ones: nothing is lost across the restart.
"""
import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli_checks(wd, tcp_port):
    d = harness.Daemon(wd, "", name="cli")
    res = d.run_cli("--help")
    assert res.returncode == 0
    for word in ("run", "check", "read", "queue", "-c, --config"):
        assert word in res.stdout, res.stdout
    assert d.run_cli().returncode == 2
    assert d.run_cli("frobnicate").returncode == 2

    many = os.path.join(wd.path, "many.yaml")
    shutil.copy(os.path.join(ROOT, "tests", "data", "config", "bad", "many.yaml"), many)
    res = d.run_cli("check", "-c", many)
    assert res.returncode == 1, res
    errors = [l for l in res.stderr.splitlines() if l.startswith(many + ":") and "error(s)" not in l]
    assert len(errors) == 9, res.stderr
    assert all(re.match(re.escape(many) + r":\d+: [a-z_.\[\]0-9]+: .+", l) for l in errors), errors
    assert "9 error(s)" in res.stderr
    res = d.run_cli("run", "-c", many)
    assert res.returncode == 2 and "mqtt.qos: 3 is out of range" in res.stderr, res

    res = d.run_cli("check", "-c", os.path.join(wd.path, "missing.yaml"))
    assert res.returncode == 1 and "cannot open" in res.stderr, res

    good = os.path.join(wd.path, "good.yaml")
    with open(good, "w") as f:
        f.write(f"""\
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5 }}
logger:
  store: /proc/modbridge-cannot-exist/store.db
mqtt:
  broker: tcp://127.0.0.1:1
""")
    res = d.run_cli("read", "-c", good, "nope")
    assert res.returncode == 2 and "no device with id 'nope'" in res.stderr and " 2)" in res.stderr, res
    res = d.run_cli("read", "-c", good, "2")
    assert res.returncode == 0 and json.loads(res.stdout)["V"] == [10, 11, 12, 13, 14], res
    res = d.run_cli("run", "-c", good, timeout=20)
    assert res.returncode == 2 and "cannot open the store" in res.stderr, res


def main():
    with harness.Workdir("cli") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        cli_checks(wd, tcp_port)

        broker = harness.Broker(wd, pki)  # not started yet: its port is reserved
        broker_port = harness.free_port()
        config = f"""\
gateway: {{ imei: "RESTART" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker_port}
  qos: 1
"""
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(r"cannot connect to tcp://127.0.0.1:%d: .*refused" % broker_port, 15)
        time.sleep(4)
        assert daemon.stop() == 0, "SIGTERM must stop the daemon cleanly"
        q = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        stored = int(re.search(r"backlog\s+(\d+)", q).group(1))
        assert stored >= 3, q

        broker.start()
        sub = harness.Subscriber(broker, "RESTART/logger", qos=1)
        sub.start()
        daemon.write_config(config.replace(str(broker_port), str(broker.port_plain)))
        daemon.start()
        harness.wait_until(lambda: len(sub.messages()) >= stored + 2, 30,
                           "the %d stored readings plus new ones" % stored)
        daemon.signal(signal.SIGINT)
        assert daemon.stop() == 0
        stamps = [json.loads(p)["TS"] for _, p in sub.messages()]
        assert stamps == sorted(stamps), stamps
        assert len(stamps) == len(set(stamps)), "duplicates: %r" % stamps
        sub.stop()
        broker.stop()
        sim.stop()
    print("CLI and restart: OK (%d readings stored across a SIGTERM, all delivered)" % stored)


if __name__ == "__main__":
    main()
