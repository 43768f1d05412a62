#!/usr/bin/python3
"""Scenario: every read function code (0x01 coils, 0x02 discrete inputs, 0x03 holding
registers, 0x04 input registers) over Modbus TCP and over RTU (socat pty), against pymodbus.
Each device's V must hold exactly what the peer serves, with bits as 0/1 and N counting bits.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

UNIT_TABLES = {
    "coils": {"values": {"0": [1, 0, 1, 1]}},
    "discrete": {"identity_bits": 64},
    "holding": {"values": {"100": [4660, 65535, 0]}},
    "input": {"values": {"5": [500, 501]}},
}
# (command, start, count, expected V)
READS = [
    (0x01, 0, 4, [1, 0, 1, 1]),
    (0x02, 3, 6, [1, 0, 1, 0, 1, 0]),
    (0x03, 100, 3, [4660, 65535, 0]),
    (0x04, 5, 2, [500, 501]),
]


def main():
    with harness.Workdir("fcodes") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"7": UNIT_TABLES}},
            {"rtu": pty.b, "baudrate": 19200, "parity": "E", "bytesize": 8, "stopbits": 1,
             "units": {"3": UNIT_TABLES}},
        ]})
        sim.start()

        devices = []
        for cmd, start, count, _ in READS:
            devices.append(f"""\
    - id: tcp-{cmd}
      address: "127.0.0.1:{tcp_port}"
      unit_id: 7
      command: 0x0{cmd}
      start: {start}
      count: {count}
      period: 1s
    - id: rtu-{cmd}
      serial: line
      address: 3
      command: {cmd}
      start: "{start}"
      count: "{count}"
      period: 1s
""")
        config = f"""\
gateway: {{ imei: "123456789012345" }}
serial:
  - {{ name: line, device: {pty.a}, baudrate: 19200, parity: even, timeout_ms: 1000 }}
modbus:
  devices:
{''.join(devices)}logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
"""
        sub = harness.Subscriber(broker, "123456789012345/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()

        expected = {}
        for cmd, start, count, values in READS:
            for transport in ("tcp", "rtu"):
                expected["%s-%d" % (transport, cmd)] = (start, count, values)

        def all_seen():
            seen = {json.loads(p)["ID"] for _, p in sub.messages()}
            return set(expected) <= seen
        harness.wait_until(all_seen, 30, "a message from each of the 8 devices")

        checked = set()
        for _, payload in sub.messages():
            msg = json.loads(payload)
            start, count, values = expected[msg["ID"]]
            assert "ERR" not in msg, payload
            assert msg["ST"] == str(start) and msg["N"] == str(count), payload
            assert msg["V"] == values, "%s: V %r, want %r" % (msg["ID"], msg["V"], values)
            assert msg["A"] == ("127.0.0.1:%d" % tcp_port if msg["ID"].startswith("tcp") else "3"), payload
            checked.add(msg["ID"])
        assert checked == set(expected), checked
        assert daemon.stop() == 0
        sub.stop()
        sim.stop()
        pty.stop()
        broker.stop()
    print("function codes over TCP and RTU: OK")


if __name__ == "__main__":
    main()
