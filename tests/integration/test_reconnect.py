#!/usr/bin/python3
"""Scenario: links that go away come back by themselves.

- Modbus TCP: the peer is restarted (its connections are reset); modbridge reconnects and
  readings resume, without a restart of modbridge.
- Modbus RTU: the serial port vanishes (the socat pty pair is stopped, so the device node
  disappears) and comes back (socat started again on the same paths); modbridge logs the
  loss once, reopens the port, and readings resume.
Every instant in between still gets a message (ERR while the link is down), and the
daemon never exits.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("reconnect") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"identity": 2000}}}}]},
            name="tcpsim")
        tcp_sim.start()
        rtu_sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "units": {"1": {"holding": {"identity": 2000}}}}]}, name="rtusim")
        rtu_sim.start()
        config = f"""\
gateway: {{ imei: "RECON" }}
serial:
  - {{ name: com2, device: {pty.a}, timeout_ms: 300 }}
modbus:
  devices:
    - {{ id: tcp, address: "127.0.0.1:{tcp_sim.port}", start: 10, count: 2, period: 1s, timeout_ms: 500 }}
    - {{ id: rtu, address: 1, start: 20, count: 2, period: 1s }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "RECON/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()

        def good(dev_id, values):
            return lambda _t, p: json.loads(p)["ID"] == dev_id and json.loads(p).get("V") == values

        def count_good(dev_id, values):
            return sum(good(dev_id, values)(None, p) for _, p in sub.messages())

        harness.wait_until(lambda: count_good("tcp", [10, 11]) >= 2 and
                           count_good("rtu", [20, 21]) >= 2, 30, "readings on both buses")

        # TCP: the peer restarts on the same port; modbridge's old connection is dead.
        before = count_good("tcp", [10, 11])
        tcp_sim.restart()
        harness.wait_until(lambda: count_good("tcp", [10, 11]) >= before + 2, 30,
                           "TCP readings after the peer restarted")

        # RTU: the serial device node disappears, then comes back.
        offset = daemon.log_offset()
        rtu_sim.stop()
        pty.stop()
        assert not os.path.exists(pty.a)
        daemon.wait_log(r"serial port com2 \(.*\): lost \(", 20, since=offset)
        daemon.wait_log(r"device rtu \(address 1 on com2 .*\): down: not answering: ", 20,
                        since=offset)
        sub.wait_match(lambda _t, p: json.loads(p)["ID"] == "rtu" and "cannot open" in
                       json.loads(p).get("ERR", ""), 20, "an ERR while the port is missing")
        before = count_good("rtu", [20, 21])
        pty.start()
        rtu_sim.start()
        daemon.wait_log(r"serial port com2 \(.*\): available again", 40, since=offset)
        harness.wait_until(lambda: count_good("rtu", [20, 21]) >= before + 2, 40,
                           "RTU readings after the port came back")
        daemon.wait_log(r"device rtu \(address 1 on com2 .*\): back after", 10, since=offset)

        assert daemon.running, "the daemon exited"
        assert daemon.stop() == 0
        log = daemon.log()
        assert log.count("serial port com2") == 2, log  # lost once, available again once
        # No reading is ever shifted or mixed up across the outages.
        for _, p in sub.messages():
            m = json.loads(p)
            if "V" in m:
                assert m["V"] == ([10, 11] if m["ID"] == "tcp" else [20, 21]), m
        sub.stop()
        tcp_sim.stop()
        rtu_sim.stop()
        pty.stop()
        broker.stop()
    print("reconnect: OK (TCP peer restart, serial port gone and back)")


if __name__ == "__main__":
    main()
