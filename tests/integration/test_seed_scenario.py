#!/usr/bin/python3
"""Scenario: the router application note, end to end.

PLC1 (11 blocks) and PLC2 (5 registers) on one RTU line (a socat pty pair at 9600 8N1),
served by pymodbus; modbridge publishes over TLS with a client certificate to a real
mosquitto. The messages a subscriber receives must equal the note's two examples byte for
byte, apart from TS. `modbridge read` must print the same JSON, and `check` must pass.
"""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMEI = "357299070082380"
TS_RE = re.compile(r'"TS":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"')


def golden(name):
    with open(os.path.join(ROOT, "tests", "data", "json", name)) as f:
        return f.read().strip()


def without_ts(payload):
    return TS_RE.sub('"TS":"-"', payload)


def seed_config(wd, pty, broker, pki):
    return f"""\
gateway:
  imei: "{IMEI}"
serial:
  - name: com2
    device: {pty.a}
    baudrate: 9600
    data_bits: 8
    parity: none
    stop_bits: 1
    timeout_ms: 1000
modbus:
  enabled: true
  devices:
    - id: "1"
      serial: com2
      address: 1
      command: 0x03
      start: "1;10;55;69;72;100;120;130;152;160;170"
      count: "1;3;2;2;9;10;5;4;3;7;1"
      type: WORD
      period: 2s
      logger: true
    - id: "2"
      serial: com2
      address: 2
      command: 0x03
      start: 10
      count: 5
      type: word
      period: 2s
logger:
  id: ID-1234
  send_mode: fifo
  time_format: iso8601
  array: false
  store: {wd.path}/store.db
  mode: mqtt
  topic: "[IMEI]/logger"
mqtt:
  enabled: true
  broker: ssl://localhost:{broker.port_tls_cert}
  client_id: "[IMEI]"
  qos: 1
  keepalive: 60
  persistence: false
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
  allow_all_certificates: false
"""


def main():
    with harness.Workdir("seed") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 2000}},
                       "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}}]})
        sim.start()
        daemon = harness.Daemon(wd, seed_config(wd, pty, broker, pki))

        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "OK" in check.stdout, check.stdout
        # The router's certificate screen shows SHA-1 fingerprints; so does check.
        assert re.search(r"mqtt.ca_file .*SHA1 ([0-9A-F]{2}:){19}[0-9A-F]{2}", check.stdout), check.stdout

        # The Test button: poll now, print, store nothing.
        for dev, name in (("1", "seed_plc1.json"), ("2", "seed_plc2.json")):
            read = daemon.run_cli("read", "-c", daemon.config_path, dev)
            assert read.returncode == 0, read.stdout + read.stderr
            assert without_ts(read.stdout.strip()) == without_ts(golden(name)), read.stdout

        sub = harness.Subscriber(broker, IMEI + "/logger", qos=1)
        sub.start()
        daemon.start()
        daemon.wait_log(r"mqtt: connected to ssl://localhost", 20)
        msgs = sub.wait_for(4, 30)
        by_id = {}
        for topic, payload in msgs:
            assert topic == IMEI + "/logger", topic
            json.loads(payload)  # valid JSON
            assert TS_RE.search(payload), payload
            by_id.setdefault(json.loads(payload)["ID"], []).append(payload)
        assert set(by_id) == {"1", "2"}, by_id.keys()
        for dev, name in (("1", "seed_plc1.json"), ("2", "seed_plc2.json")):
            for payload in by_id[dev]:
                assert without_ts(payload) == without_ts(golden(name)), \
                    "device %s:\n got  %s\n want %s" % (dev, payload, golden(name))

        # TS is the time of the poll, on the 2 s grid, and recent.
        for payload in by_id["1"]:
            ts = time.mktime(time.strptime(TS_RE.search(payload).group(1), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            assert abs(time.time() - ts) < 60, payload
            assert int(ts) % 2 == 0, "poll not aligned to the 2 s period: " + payload

        assert daemon.stop() == 0
        assert "stopped" in daemon.log()
        # Every reading that was published is gone from the store; nothing is lost.
        queue = daemon.run_cli("queue", "-c", daemon.config_path)
        assert queue.returncode == 0, queue.stderr
        print(queue.stdout)
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("seed scenario: OK")


if __name__ == "__main__":
    main()
