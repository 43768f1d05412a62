#!/usr/bin/python3
"""Scenario: kill -9 at random moments while a backlog drains (issue: logger).

A gateway with 40 devices (one reading each per second, so (ID, TS) names a reading)
builds a backlog while no broker listens; the backlog is then deepened with 40,000
synthetic readings written straight into its store file (same schema), so that the drain
takes seconds. Then, with the broker up, the gateway is killed with SIGKILL at a random
moment 20 times in a row while the backlog drains (QoS 2, a window of 4 messages in
flight), restarted each time, and finally left to drain. Checks:
- every reading found committed in the store after any kill arrives at the subscriber;
- per device, no second is missing while the gateway was running (a reading can only be
  lost if it was polled but not yet committed when the kill came);
- duplicates stay within the window per kill.
"""
import calendar
import json
import os
import random
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CYCLES = 20
DEVICES = 40
WINDOW = 4
SYNTHETIC = 40000


def ts_secs(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def committed_rows(db):
    """(ID, TS) of every reading in the store file right now (the daemon is dead)."""
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return {(json.loads(p)["ID"], json.loads(p)["TS"]) for (p,) in con.execute("SELECT payload FROM queue")}
    finally:
        con.close()


def main():
    rng = random.Random(int(os.environ.get("MODBRIDGE_SEED", time.time())))
    with harness.Workdir("crash") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        dead_port = harness.free_port()
        devices = "".join(f'    - {{ id: "d{i}", address: "127.0.0.1:{tcp_port}", start: {i}, count: 4, period: 1s }}\n'
                          for i in range(DEVICES))
        template = f"""\
gateway: {{ imei: "CRASH" }}
modbus:
  devices:
{devices}logger:
  store: {wd.path}/store.db
  inflight_window: {WINDOW}
mqtt:
  broker: tcp://127.0.0.1:PORT
  client_id: crash-gw
  qos: 2
"""
        daemon = harness.Daemon(wd, template.replace("PORT", str(dead_port)))
        runs = []  # (start, end) wall-clock of each daemon life
        daemon.start()
        daemon.wait_log(r"info: running:", 15)
        t0 = time.time()  # continuity counts from here: start-up is slow under TSan
        daemon.wait_log("cannot connect", 15)
        time.sleep(8)
        daemon.kill9()
        runs.append((t0, time.time()))
        db = os.path.join(wd.path, "store.db")
        con = sqlite3.connect(db)
        with con:
            con.executemany("INSERT INTO queue(ts_ms, device, payload) VALUES(?,?,?)",
                            ((0, "bk", json.dumps({"ID": "bk", "TS": "n%d" % k, "V": list(range(40))},
                                                  separators=(",", ":")))
                             for k in range(SYNTHETIC)))
        con.close()
        committed = committed_rows(db)
        assert len(committed) >= 6 * DEVICES + SYNTHETIC, len(committed)

        broker = harness.Broker(wd, pki)
        broker.start()
        sub = harness.Subscriber(broker, "CRASH/logger", qos=2, client_id="crash-sub", clean=False)
        sub.start()
        daemon.write_config(template.replace("PORT", str(broker.port_plain)))
        for cycle in range(CYCLES):
            t = time.time()
            daemon.start()
            time.sleep(rng.uniform(0.05, 0.8))
            daemon.kill9()
            runs.append((t, time.time()))
            committed |= committed_rows(os.path.join(wd.path, "store.db"))
            print("cycle %d: %d received" % (cycle, len(sub.messages())), flush=True)
        daemon.start()
        daemon.wait_log(r"info: running:", 15)
        t = time.time()

        def drained():
            out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
            return int(re.search(r"backlog\s+(\d+)", out).group(1)) <= DEVICES
        harness.wait_until(drained, 120, "the backlog to drain")
        time.sleep(2.5)
        assert daemon.stop() == 0
        runs.append((t, time.time()))
        time.sleep(1)

        received = [(json.loads(p)["ID"], json.loads(p)["TS"]) for _, p in sub.messages()]
        got = set(received)
        lost = committed - got
        assert not lost, "%d committed readings never arrived, e.g. %r" % (len(lost), sorted(lost)[:5])
        dupes = len(received) - len(got)
        assert dupes <= WINDOW * (CYCLES + 1), "%d duplicates (window %d, %d kills)" % (dupes, WINDOW, CYCLES)

        # Continuity: while a gateway was running (from its "running" line on), every device
        # has every second, except the first second of a run and the second of the kill
        # (polled, maybe not committed).
        gaps = []
        for i in range(DEVICES):
            have = {ts_secs(ts) for dev, ts in got if dev == "d%d" % i}
            for start, end in runs:
                for s in range(int(start) + 2, int(end) - 1):
                    if s not in have:
                        gaps.append(("d%d" % i, s))
        assert not gaps, "readings missing while the gateway ran: %r" % gaps[:10]
        print("crash loop: %d kills, %d readings received, %d committed before kills all arrived, "
              "%d duplicates (bound %d)" % (CYCLES + 1, len(got), len(committed), dupes,
                                            WINDOW * (CYCLES + 1)))
        sub.stop()
        broker.stop()
        sim.stop()
    print("crash loop: OK")


if __name__ == "__main__":
    main()
