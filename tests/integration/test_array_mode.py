#!/usr/bin/python3
"""Scenario: array mode ("Use array") sends several readings per publish, within bounds.

With logger.array on, array_max_count 4 and a backlog built while the broker was away,
the subscriber receives JSON arrays of at most 4 readings and at most array_max_bytes
bytes; together they hold every reading exactly once, oldest first.
"""
import calendar
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("array") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        template = f"""\
gateway: {{ imei: "ARRAY" }}
modbus:
  devices:
    - {{ id: "a", address: "127.0.0.1:{tcp_port}", start: 0, count: 3, period: 1s }}
    - {{ id: "b", address: "127.0.0.1:{tcp_port}", start: 10, count: 3, period: 1s }}
logger:
  store: {wd.path}/store.db
  array: true
  array_max_count: 4
  array_max_bytes: 1024
mqtt:
  broker: tcp://127.0.0.1:PORT
"""
        daemon = harness.Daemon(wd, template.replace("PORT", str(harness.free_port())))
        t0 = time.time()
        daemon.start()
        time.sleep(6)
        broker = harness.Broker(wd, pki)
        broker.start()
        sub = harness.Subscriber(broker, "ARRAY/logger", qos=1)
        sub.start()
        assert daemon.stop() == 0
        daemon.write_config(template.replace("PORT", str(broker.port_plain)))
        daemon.start()
        time.sleep(4)
        assert daemon.stop() == 0
        t1 = time.time()

        readings = []
        sizes = []
        for _, payload in sub.messages():
            arr = json.loads(payload)
            assert isinstance(arr, list), payload
            assert 1 <= len(arr) <= 4 and len(payload) <= 1024, payload
            sizes.append(len(arr))
            readings += [(m["ID"], calendar.timegm(time.strptime(m["TS"], "%Y-%m-%dT%H:%M:%SZ"))) for m in arr]
        assert max(sizes) == 4, "the backlog should fill arrays: %r" % sizes
        assert len(readings) == len(set(readings)), "duplicates"
        assert [t for _, t in readings] == sorted(t for _, t in readings), "not oldest first"
        for dev in ("a", "b"):
            have = {t for d, t in readings if d == dev}
            assert len(have) >= 8, (dev, sorted(have))
        print("array mode: %d readings in %d messages (sizes %r)" % (len(readings), len(sizes), sizes))
        sub.stop()
        broker.stop()
        sim.stop()
    print("array mode: OK")


if __name__ == "__main__":
    main()
