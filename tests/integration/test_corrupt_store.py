#!/usr/bin/python3
"""Scenario: a damaged store file is moved aside, never deleted, and the gateway runs on.

The store file is overwritten with garbage (as a failing SD card might leave it). At
start-up the gateway must say so clearly, rename the file to store.db.corrupt-<time>
(byte-for-byte unchanged, for recovery), start a fresh store and deliver readings.
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("corrupt") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        store = os.path.join(wd.path, "store.db")
        garbage = b"SQLite format 3\0" + bytes(range(256)) * 64  # right magic, wrong content
        with open(store, "wb") as f:
            f.write(garbage)
        config = f"""\
gateway: {{ imei: "CORRUPT" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {store}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "CORRUPT/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(r"damaged; moved it aside to .*store\.db\.corrupt-", 15)
        sub.wait_for(2, 20)
        assert daemon.stop() == 0
        kept = glob.glob(store + ".corrupt-*")
        assert len(kept) == 1, kept
        with open(kept[0], "rb") as f:
            assert f.read() == garbage, "the damaged file must be kept unchanged"
        sub.stop()
        sim.stop()
        broker.stop()
    print("corrupt store: OK")


if __name__ == "__main__":
    main()
