#!/usr/bin/python3
"""The seed scenario, end to end, on one machine (run it through scripts/demo.sh).

PLC1 (slave 1, the note's 11 register blocks) is served over Modbus RTU on one end of a
socat pty pair at 9600 8N1; PLC2 (5 registers from 10) over Modbus TCP. A local mosquitto
listens with TLS and requires a client certificate; all certificates are generated now.
modbridge polls both PLCs every 5 seconds and a subscriber prints what arrives.

With --http (scripts/demo.sh --http) the readings go to a local HTTPS collector instead
(logger.mode: http, the router's WEB mode; it wants a client certificate too), which
prints every request body; the broker stays, for the AT commands and the status topic.
"""
import json
import os
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("MODBRIDGE_BIN", os.path.join(ROOT, "build", "modbridge"))

import harness  # noqa: E402
import servers  # noqa: E402

IMEI = "357299070082380"
PERIOD = os.environ.get("DEMO_PERIOD", "5s")


def main():
    http = "--http" in sys.argv[1:]
    unknown = [a for a in sys.argv[1:] if a != "--http"]
    if unknown:
        print("usage: scripts/demo.sh [--http]", file=sys.stderr)
        return 2
    seconds = float(os.environ.get("DEMO_SECONDS", "30"))
    with harness.Workdir("demo") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 2000}}}},
            {"tcp": "127.0.0.1:%d" % tcp_port,
             "units": {"1": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}},
        ]})
        sim.start()

        config = f"""\
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
  devices:
    - id: "1"
      serial: com2
      address: 1
      command: 0x03
      start: "1;10;55;69;72;100;120;130;152;160;170"
      count: "1;3;2;2;9;10;5;4;3;7;1"
      type: word
      period: {PERIOD}
    - id: "2"
      address: "127.0.0.1:{tcp_port}"
      command: 0x03
      start: 10
      count: 5
      period: {PERIOD}
logger:
  id: ID-1234
  send_mode: fifo
  time_format: iso8601
  store: {wd.path}/store.db
  topic: "[IMEI]/logger"
  mode: {"http" if http else "mqtt"}
mqtt:
  broker: ssl://localhost:{broker.port_tls_cert}
  client_id: "[IMEI]"
  qos: 1
  keepalive: 60
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
"""
        rec = None
        if http:
            rec = servers.HttpRecorder(wd, pki, require_cert=True)
            rec.start()
            config += f"""\
http:
  url: {rec.url}
  headers:
    X-Gateway: "[IMEI]"
  ca_file: {pki['ca']}
  cert_file: {pki['client_cert']}
  key_file: {pki['client_key']}
"""
        sub = harness.Subscriber(broker, IMEI + "/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        print("== modbridge check ==")
        check = daemon.run_cli("check", "-c", daemon.config_path)
        print(check.stdout + check.stderr, end="")
        print("== PLC1 over RTU (%s, 9600 8N1), PLC2 over TCP (127.0.0.1:%d), %s "
              "with client certificates, period %s, for %.0f s ==" %
              (pty.a, tcp_port, ("HTTPS collector " + rec.url) if http else
               "broker ssl://localhost:%d" % broker.port_tls_cert, PERIOD, seconds))
        daemon.start(env=servers.NO_PROXY_ENV)
        stop = {"now": False}
        signal.signal(signal.SIGINT, lambda *a: stop.__setitem__("now", True))
        seen = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop["now"]:
            if http:
                msgs = [("POST " + rec.url, b.decode()) for b in rec.delivered()]
            else:
                msgs = sub.messages()
            for topic, payload in msgs[seen:]:
                print("%s %s" % (topic, payload))
                try:
                    json.loads(payload)
                except ValueError:
                    print("  (not valid JSON!)")
            seen = len(msgs)
            time.sleep(0.2)
        code = daemon.stop()
        print("== %d message(s) received; modbridge exited with %d ==" % (seen, code))
        if http:
            print("== modbridge queue ==")
            print(daemon.run_cli("queue", "-c", daemon.config_path).stdout, end="")
        print("== the daemon's log ==")
        print(daemon.log(), end="")
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
        return 0 if seen > 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
