#!/usr/bin/python3
"""Scenario: Modbus TCP endpoints that never answer do not delay the healthy ones, and cost
no threads (the successor of test_tcp_pool: the event loop replaced the pool).

Every TCP endpoint is served by one event loop (src/tcpbus.c): all due endpoints get their
request at once, and a device that times out holds only its own endpoint. Four endpoints
whose device never answers (800 ms time-out, listed first in the configuration, so that
they are due first) and two healthy endpoints, all at 1 s. The healthy endpoints must be
read at every whole second, within 0.3 s of it from the very first instant (the pool took
up to 0.9 s there while it grew a worker per stuck endpoint). The dead devices publish ERR
readings. The daemon's thread count, sampled throughout, never changes (the pool grew to
at least five workers). Request arrival times come from the peer's request log.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEAD = 4
TOLERANCE_S = 0.3


def threads(pid):
    with open("/proc/%d/status" % pid, encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def main():
    with harness.Workdir("tcploop") as wd:
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
gateway: {{ imei: "LOOP" }}
modbus:
  devices:
{devices}logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "LOOP/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(r"running: ", 20)
        counts = []

        def healthy(server):
            return [r["t"] for r in sim.requests() if r["server"] == server]

        def six_reads():
            counts.append(threads(daemon.pid))
            return min(len(healthy(DEAD)), len(healthy(DEAD + 1))) >= 6
        harness.wait_until(six_reads, 30, "six reads of each healthy endpoint")
        assert daemon.stop() == 0
        assert counts and min(counts) == max(counts), \
            "the thread count changed while devices timed out: %r" % counts

        worst = []
        for server in (DEAD, DEAD + 1):
            times = healthy(server)
            seconds = [int(t) for t in times]
            assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), \
                "endpoint %d missed or doubled instants: %r" % (server, times)
            offsets = [t - int(t) for t in times]
            assert all(o < TOLERANCE_S for o in offsets), \
                "endpoint %d read late behind the dead ones: offsets %r" % (server, offsets)
            worst.append(max(offsets))

        msgs = [json.loads(p) for _, p in sub.messages()]
        ok = [m for m in msgs if m["ID"].startswith("ok")]
        assert ok and all(m.get("V") == [5, 6] for m in ok), ok
        dead = [m for m in msgs if m["ID"].startswith("dead")]
        assert dead and all("V" not in m and m["ERR"] in (
            "timeout", "not polled: device down (last error: timeout)") for m in dead), dead
        log = daemon.log()
        assert "modbus tcp: 6 endpoint(s) with 6 device(s), served by one event loop" in log, log
        sub.stop()
        sim.stop()
        broker.stop()
    print("tcp loop: OK (healthy endpoints read at every instant while %d never answer, at most "
          "%.0f ms after it; %d threads throughout)"
          % (DEAD, 1000 * max(worst), counts[0]))


if __name__ == "__main__":
    main()
