#!/usr/bin/python3
"""Scenario: the broker restarts while a backlog drains with a full window in flight.

30,000 readings are in the store; the gateway drains them at QoS 1. When a third has
arrived, the broker is restarted (with persistence, so the subscriber's session survives).
The messages that were in flight must be resent after the reconnect (none may stay stuck
in the window), the backlog must reach 0, every reading must arrive, and duplicates stay
within the in-flight window (per hop: ours to the broker, the broker's to the
subscriber).
"""
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

N = 30000
WINDOW = 256
BROKER_INFLIGHT = 20


def main():
    with harness.Workdir("midrain") as wd:
        pki = harness.make_pki(wd.path)
        # mosquitto's default in-flight limit (20) per client, so the broker's own resends to
        # the subscriber after its restart are bounded too.
        broker = harness.Broker(wd, pki, persistence=True, max_inflight=BROKER_INFLIGHT)
        broker.start()
        store = os.path.join(wd.path, "store.db")
        config = f"""\
gateway: {{ imei: "MIDRAIN" }}
modbus:
  devices:
    - {{ id: "x", address: "127.0.0.1:1", start: 0, count: 1, logger: false }}
logger:
  store: {store}
  inflight_window: {WINDOW}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: midrain-gw
  qos: 1
"""
        daemon = harness.Daemon(wd, config)
        daemon.run_cli("queue", "-c", daemon.config_path)  # creates the store
        con = sqlite3.connect(store)
        with con:
            con.executemany("INSERT INTO queue(ts_ms, device, payload) VALUES(0,'x',?)",
                            (('{"ID":"x","N":%d,"V":[%s]}' % (k, ",".join(["7"] * 60)),) for k in range(N)))
        con.close()
        sub = harness.Subscriber(broker, "MIDRAIN/logger", qos=1, client_id="midrain-sub", clean=False)
        sub.start()
        daemon.start()
        harness.wait_until(lambda: len(sub.messages()) >= N // 3, 60, "a third of the backlog")
        broker.stop()
        broker.start()

        def drained():
            out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
            return "backlog  0\n" in out
        harness.wait_until(drained, 90, "the backlog to drain after the broker restart")
        time.sleep(1)
        assert daemon.stop() == 0
        got = [json.loads(p)["N"] for _, p in sub.messages()]
        missing = set(range(N)) - set(got)
        assert not missing, "%d readings never arrived" % len(missing)
        dupes = len(got) - len(set(got))
        # Two hops can duplicate: our window (messages the broker had but whose PUBACK we
        # lost), and the broker's own in-flight messages to the subscriber, which it sends
        # again after its restart (mosquitto's max_inflight_messages).
        assert dupes <= WINDOW + BROKER_INFLIGHT, "%d duplicates for a window of %d" % (dupes, WINDOW)
        print("broker restart mid-drain: %d readings, %d duplicates (window %d)" % (N, dupes, WINDOW))
        sub.stop()
        broker.stop()
    print("broker restart mid-drain: OK")


if __name__ == "__main__":
    main()
