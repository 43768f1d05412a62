#!/usr/bin/python3
"""Scenario: Modbus TCP endpoints that never answer do not delay the healthy ones.

TCP endpoints share an elastic pool of workers (src/poller.c): a device that times out
holds one worker for its time-out, and the pool starts another worker when a due endpoint
has waited 100 ms with every worker busy. Four endpoints whose device never answers
(800 ms time-out, listed first in the configuration so that the first instant serves them
first) and two healthy endpoints, all at 1 s. The healthy endpoints must be read at every
whole second: within 0.9 s at the first instant (the pool grows from one worker, one
every 100 ms) and within 0.3 s at every later one (the pool has grown, and endpoints that
answer are served before failing ones). The dead devices publish ERR readings, and the
pool grows to at least five workers (one per stuck endpoint, plus one) but no further
than one per endpoint. Request arrival times come from the peer's request log.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEAD = 4
FIRST_TOLERANCE_S = 0.9
TOLERANCE_S = 0.3


def main():
    with harness.Workdir("tcppool") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        servers = [{"tcp": "127.0.0.1:0", "units": {"1": {"silent": True}}} for _ in range(DEAD)]
        servers += [{"tcp": "127.0.0.1:0", "units": {"1": {"holding": {"identity": 100}}}}
                    for _ in range(2)]
        sim = harness.ModbusSim(wd, {"servers": servers})
        sim.start()
        ports = sim.tcp_ports
        devices = "".join(
            f'    - {{ id: dead{i}, address: "127.0.0.1:{ports[i]}", start: 0, count: 2, '
            f'period: 1s, timeout_ms: 800, retries: 0 }}\n' for i in range(DEAD))
        devices += "".join(
            f'    - {{ id: ok{i}, address: "127.0.0.1:{ports[DEAD + i]}", start: 5, count: 2, '
            f'period: 1s }}\n' for i in range(2))
        config = f"""\
gateway: {{ imei: "POOL" }}
modbus:
  devices:
{devices}logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "POOL/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()

        def healthy(server):
            return [r["t"] for r in sim.requests() if r["server"] == server]
        harness.wait_until(lambda: min(len(healthy(DEAD)), len(healthy(DEAD + 1))) >= 6, 30,
                           "six reads of each healthy endpoint")
        assert daemon.stop() == 0

        worst = []
        for server in (DEAD, DEAD + 1):
            times = healthy(server)
            seconds = [int(t) for t in times]
            assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), \
                "endpoint %d missed or doubled instants: %r" % (server, times)
            offsets = [t - int(t) for t in times]
            assert offsets[0] < FIRST_TOLERANCE_S, \
                "endpoint %d: first read %.3f s after its instant" % (server, offsets[0])
            assert all(o < TOLERANCE_S for o in offsets[1:]), \
                "endpoint %d read late behind the dead ones: offsets %r" % (server, offsets)
            worst.append((offsets[0], max(offsets[1:])))

        msgs = [json.loads(p) for _, p in sub.messages()]
        ok = [m for m in msgs if m["ID"].startswith("ok")]
        assert ok and all(m.get("V") == [5, 6] for m in ok), ok
        dead = [m for m in msgs if m["ID"].startswith("dead")]
        # A dead device's read may end after the next instant (the first instant's reads
        # start late while the pool grows): that instant is published as skipped.
        assert dead and all("V" not in m and m["ERR"] in (
            "timeout", "not polled: device down (last error: timeout)",
            "skipped: previous read still running") for m in dead), dead
        log = daemon.log()
        assert "modbus tcp: 6 endpoint(s), served by a pool of workers" in log, log
        grown = [int(n) for n in re.findall(r"modbus tcp: (\d+) worker\(s\) for 6 endpoint", log)]
        assert grown and max(grown) >= DEAD + 1 and max(grown) <= 6, grown
        sub.stop()
        sim.stop()
        broker.stop()
    print("tcp pool: OK (healthy endpoints read at every instant while %d never answer, at most "
          "%.0f ms after the first instant and %.0f ms after later ones; pool grew to %d workers)"
          % (DEAD, 1000 * max(w[0] for w in worst), 1000 * max(w[1] for w in worst), max(grown)))


if __name__ == "__main__":
    main()
