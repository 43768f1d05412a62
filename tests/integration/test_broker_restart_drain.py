#!/usr/bin/python3
"""Scenario: the broker restarts while a backlog drains with a full window in flight.

30,000 readings are in the store; the gateway drains them at QoS 1 with a window of 256.
When a third has arrived, the broker is restarted (with persistence, so the subscriber's
session survives). The messages that were in flight must be resent after the reconnect
(none may stay stuck in the window), the backlog must reach 0 and every reading must arrive.

Duplicates are accounted for per hop, from the broker's log (log_type all shows the DUP
flag of every PUBLISH):
  - ours: we may resend at most the window (PUBLISHes from the gateway with d1);
  - the broker's: after restoring its database, mosquitto 2.0.11 resends to the subscriber
    what it had sent before the restart (with d1); on a loaded machine that is more than its
    max_inflight_messages (93 measured with 20), so the test does not bound it.
Every duplicate the subscriber sees must be explained by one of those resends: a reading
that we published twice *without* the DUP flag (republished from the store) fails the test.
"""
import collections
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


def ranges(numbers):
    """'a-b c-d ...': runs of consecutive numbers, to show where duplicates came from."""
    out, run = [], []
    for n in sorted(numbers):
        if run and n != run[-1] + 1:
            out.append("%d-%d" % (run[0], run[-1]))
            run = []
        run.append(n)
    if run:
        out.append("%d-%d" % (run[0], run[-1]))
    return " ".join(out)


def main():
    with harness.Workdir("midrain") as wd:
        pki = harness.make_pki(wd.path)
        # No max_inflight_messages: it would become the broker's receive-maximum for our
        # MQTT 5 connection and keep our window from filling.
        broker = harness.Broker(wd, pki, persistence=True)
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
        daemon.start()  # creates the store (`queue` only looks at it)
        daemon.wait_log(r"running: ", 15)
        assert daemon.stop() == 0
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
        log = broker.log()
        ours = len(re.findall(r"Received PUBLISH from midrain-gw \(d1,", log))
        brokers = len(re.findall(r"Sending PUBLISH to midrain-sub \(d1,", log))
        where = ranges(n for n, c in collections.Counter(got).items() if c > 1)
        assert ours <= WINDOW, "we resent %d messages with a window of %d" % (ours, WINDOW)
        assert dupes <= ours + brokers, \
            "%d duplicates, but only %d resends by us and %d by the broker: %s" % (
                dupes, ours, brokers, where)
        print("broker restart mid-drain: %d readings, %d duplicates (%d resent by us, window %d; "
              "%d by the broker): %s" % (N, dupes, ours, WINDOW, brokers, where))
        sub.stop()
        broker.stop()
    print("broker restart mid-drain: OK")


if __name__ == "__main__":
    main()
