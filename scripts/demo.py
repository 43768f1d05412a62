#!/usr/bin/python3
"""The seed scenario, end to end, on one machine (run it through scripts/demo.sh).

PLC1 (slave 1, the note's 11 register blocks) is served over Modbus RTU on one end of a
socat pty pair at 9600 8N1; PLC2 (5 registers from 10) over Modbus TCP. A local mosquitto
listens with TLS and requires a client certificate; all certificates are generated now.
modbridge polls both PLCs every 5 seconds and a subscriber prints what arrives.
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

IMEI = "357299070082380"
PERIOD = os.environ.get("DEMO_PERIOD", "5s")


def main():
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
mqtt:
  broker: ssl://localhost:{broker.port_tls_cert}
  client_id: "[IMEI]"
  qos: 1
  keepalive: 60
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
        print("== PLC1 over RTU (%s, 9600 8N1), PLC2 over TCP (127.0.0.1:%d), broker "
              "ssl://localhost:%d with client certificates, period %s, for %.0f s ==" %
              (pty.a, tcp_port, broker.port_tls_cert, PERIOD, seconds))
        daemon.start()
        stop = {"now": False}
        signal.signal(signal.SIGINT, lambda *a: stop.__setitem__("now", True))
        seen = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not stop["now"]:
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
        print("== the daemon's log ==")
        print(daemon.log(), end="")
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
        return 0 if seen > 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
