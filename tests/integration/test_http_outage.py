#!/usr/bin/python3
"""Scenario: http mode through a 20 s server outage and a kill -9 mid-request (issue 11).

A gateway polls a Modbus TCP device every second and posts JSON arrays (array mode, at
most 5 readings per request) to an HTTPS server:
- the server goes away for 20 s (connection refused): nothing is lost, the backlog drains
  afterwards, and the readings arrive in order (FIFO), each once;
- the daemon is killed with SIGKILL while the server holds a request it has taken (it
  answers after 3 s): after a restart nothing is lost, and the only readings that arrive
  twice are those of that one request.
"""
import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402

OUTAGE_S = 20


def readings(body):
    items = json.loads(body)
    assert isinstance(items, list) and 1 <= len(items) <= 5, body
    return [calendar.timegm(time.strptime(i["TS"], "%Y-%m-%dT%H:%M:%SZ")) for i in items]


def backlog(daemon):
    out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
    return int(re.search(r"backlog\s+(\d+)", out).group(1))


def main():
    with harness.Workdir("http-outage") as wd:
        pki = harness.make_pki(wd.path)
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        rec = servers.HttpRecorder(wd, pki, require_cert=False)
        rec.start()
        config = f"""\
gateway: {{ imei: "GW-HTTP" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/store.db
  mode: http
  array: true
  array_max_count: 5
http:
  url: {rec.url}
  ca_file: {pki['ca']}
  timeout_ms: 5000
"""
        daemon = harness.Daemon(wd, config)
        daemon.start(env=servers.NO_PROXY_ENV)
        harness.wait_until(lambda: len(rec.delivered()) >= 3, 20, "3 requests")

        # ---- 20 s outage
        rec.stop()
        servers.wait_port_closed(rec.port)
        t_down = time.time()
        daemon.wait_log(r"http: https://localhost\S*: .*(refused|Couldn't connect|Failed to connect)", 15)
        time.sleep(OUTAGE_S - 4)
        assert backlog(daemon) >= OUTAGE_S - 6, "backlog not kept during the outage"
        time.sleep(4)
        rec.start()
        t_up = time.time()
        daemon.wait_log(r"accepts readings again", 45)
        harness.wait_until(lambda: backlog(daemon) <= 2, 30, "the backlog to drain")

        # ---- kill -9 while the server holds a request it took
        rec.delay_s = 3
        n = len(rec.requests)
        harness.wait_until(lambda: len(rec.requests) > n, 10, "a request to hold")
        time.sleep(0.5)
        held = readings(rec.requests[-1]["body"])
        daemon.kill9()
        t_kill = time.time()
        time.sleep(3)
        rec.delay_s = 0
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"running: 1 device", 10)
        t_start = time.time()
        harness.wait_until(lambda: len(rec.delivered()) > len(rec.requests[:n]) + 3, 30,
                           "deliveries after the restart")
        time.sleep(3)
        assert daemon.stop() == 0
        sim.stop()

        s = [t for body in rec.delivered() for t in readings(body)]
        dupes = sorted({x for x in s if s.count(x) > 1})
        assert set(dupes) <= set(held), "duplicates %r beyond the request in flight %r" % (dupes, held)
        # Nothing polls while the daemon is dead: those seconds have no reading to lose.
        dead = set(range(int(t_kill) + 1, int(t_start) + 1))
        missing = sorted(set(range(min(s), max(s) + 1)) - set(s) - dead)
        assert not missing, "readings lost: %r" % missing
        first = [x for i, x in enumerate(s) if x not in s[:i]]
        assert first == sorted(first), "FIFO order broken: %r" % s
        outage = [x for x in s if t_down + 1 < x < t_up - 1]
        assert len(outage) >= OUTAGE_S - 4, "only %d readings from the outage" % len(outage)
        assert backlog(daemon) <= 2
        print("http outage: %d readings in %d requests, %d taken during the %d s outage, none "
              "lost, order kept; kill -9 mid-request: %d duplicate(s), all from the one request "
              "in flight (%d readings)" % (len(set(s)), len(rec.delivered()), len(outage), OUTAGE_S,
                                          len(s) - len(set(s)), len(held)))
    print("http outage: OK")


if __name__ == "__main__":
    main()
