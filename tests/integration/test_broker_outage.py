#!/usr/bin/python3
"""Scenario: readings taken while the broker is down arrive after it returns.

The device is polled every second at QoS 1. The broker (with persistence, so the QoS 1
subscriber's persistent session and its queue survive) is stopped for 8 s and started
again. Every second from the first reading to the last must be present at the subscriber
exactly once, in FIFO order, and `modbridge queue` must show the backlog during the outage.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def main():
    with harness.Workdir("outage") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki, persistence=True)
        broker.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        config = f"""\
gateway: {{ imei: "OUTAGE" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/store.db
  send_mode: fifo
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: outage-gw
  qos: 1
"""
        sub = harness.Subscriber(broker, "OUTAGE/logger", qos=1, client_id="outage-sub", clean=False)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        sub.wait_for(3, 20)

        broker.stop()
        daemon.wait_log(r"mqtt: connection to .* lost", 10)
        time.sleep(8)
        queue = daemon.run_cli("queue", "-c", daemon.config_path)
        backlog = int([l.split()[1] for l in queue.stdout.splitlines() if l.startswith("backlog")][0])
        assert backlog >= 6, queue.stdout
        broker.start()
        daemon.wait_log(r"mqtt: connected to .*\n(.|\n)*mqtt: connected to ", 40)

        def drained():
            q = daemon.run_cli("queue", "-c", daemon.config_path).stdout
            return "backlog  0" in q or "backlog  1\n" in q
        harness.wait_until(drained, 40, "the backlog to drain")
        time.sleep(2)
        assert daemon.stop() == 0
        time.sleep(1)

        stamps = [json.loads(p)["TS"] for _, p in sub.messages()]
        secs = [int(time.mktime(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))) for t in stamps]
        assert secs == sorted(secs), "not FIFO: %r" % stamps
        dupes = len(secs) - len(set(secs))
        assert dupes == 0, "%d duplicates: %r" % (dupes, stamps)
        missing = sorted(set(range(secs[0], secs[-1] + 1)) - set(secs))
        assert not missing, "readings lost: %r (got %r)" % (missing, stamps)
        assert len(secs) >= 14, stamps
        final = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        assert "backlog  0" in final, final
        sub.stop()
        sim.stop()
        broker.stop()
    print("broker outage: OK (%d readings, none lost)" % len(secs))


if __name__ == "__main__":
    main()
