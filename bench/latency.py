#!/usr/bin/python3
"""Poll-to-subscriber latency on loopback (issue: the seed data path).

modbridge polls a device every second over Modbus TCP (pymodbus) and over RTU (socat pty,
pymodbus), stores each reading (SQLite, synchronous=FULL) and publishes it at QoS 1 over
TLS with a client certificate to a local mosquitto; mosquitto_sub receives it. Polls start
at whole seconds (the aligned schedule), so latency = arrival time - the second in TS.
It includes the Modbus transaction, the JSON encoding, the durable commit, the TLS publish
and the broker's hop to the subscriber.

Usage: bench/latency.py [SAMPLES]   (default 30 per transport; needs build/modbridge)
"""
import json
import os
import statistics
import sys
import time
import calendar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("MODBRIDGE_BIN", os.path.join(ROOT, "build", "modbridge"))
import harness  # noqa: E402


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with harness.Workdir("bench-latency") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 2000}}}},
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": {"holding": {"identity": 2000}}}}]})
        sim.start()
        config = f"""\
gateway: {{ imei: "BENCH" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600 }}
modbus:
  devices:
    - {{ id: tcp, address: "127.0.0.1:{tcp_port}", start: "1;10;55;69;72;100;120;130;152;160;170", count: "1;3;2;2;9;10;5;4;3;7;1", period: 1s }}
    - {{ id: rtu, serial: com2, address: 1, start: "1;10;55;69;72;100;120;130;152;160;170", count: "1;3;2;2;9;10;5;4;3;7;1", period: 1s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: ssl://localhost:{broker.port_tls_cert}
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
  qos: 1
"""
        sub = harness.Subscriber(broker, "BENCH/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log("mqtt: connected", 20)
        time.sleep(1.5)  # skip the first poll (connection set-up)
        sub.clear()
        harness.wait_until(lambda: len(sub.records()) >= 2 * samples, samples + 30,
                           "%d readings" % (2 * samples))
        daemon.stop()
        lat = {"tcp": [], "rtu": []}
        for rec in sub.records():
            msg = json.loads(rec["payload"])
            polled = calendar.timegm(time.strptime(msg["TS"], "%Y-%m-%dT%H:%M:%SZ"))
            lat[msg["ID"]].append((rec["arrival"] - polled) * 1000.0)
        print("poll-to-subscriber latency, 11 blocks / 47 registers, QoS 1, TLS + client cert, loopback")
        print("| path | samples | p50 ms | p99 ms | max ms |")
        print("|---|---|---|---|---|")
        for name, label in (("tcp", "Modbus TCP (pymodbus)"), ("rtu", "Modbus RTU, pty (pymodbus)")):
            v = lat[name]
            print("| %s | %d | %.1f | %.1f | %.1f |" % (label, len(v), statistics.median(v),
                                                       percentile(v, 99), max(v)))
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()


if __name__ == "__main__":
    main()
