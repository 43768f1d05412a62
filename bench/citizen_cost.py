#!/usr/bin/python3
"""What systemd's watchdog and the Prometheus metrics cost on Neuron's workload (issue 14).

A/B runs of one binary, alternated in one session, on bench.py's Neuron workload (500
Modbus TCP devices x 30 registers, period 1 s, store + TLS + QoS 1):
  A  plain: no NOTIFY_SOCKET, no metrics.listen;
  B  "citizen": NOTIFY_SOCKET and WATCHDOG_USEC=30 s (a real datagram socket, drained; the
     daemon then wakes every 1 s for STATUS and every 15 s for WATCHDOG=1 and checks its
     threads' beats), metrics.listen set and /metrics scraped every 5 s (a third of
     Prometheus' default interval, so an upper bound).
Prints CPU%, peak RSS and the scrape size per run and the medians. Not a test.

    /usr/bin/python3 bench/citizen_cost.py [--runs N] [--duration S]
"""
import argparse
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


class CitizenEnv(bench.Env):
    metrics_port = None

    def config(self, name, devices, period_ms):
        text = super().config(name, devices, period_ms)
        if self.metrics_port:
            text += 'metrics:\n  listen: "127.0.0.1:%d"\n' % self.metrics_port
        return text


def notify_sink(path, counts, stop):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            data = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            continue
        for line in data.splitlines():
            key = line.split("=", 1)[0]
            counts[key] = counts.get(key, 0) + 1
    sock.close()
    os.unlink(path)


def scraper(port, stats, stop):
    while not stop.wait(5):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                body = r.read()
            stats["scrapes"] += 1
            stats["bytes"] = len(body)
        except OSError:
            stats["errors"] += 1


def run(env, citizen, duration):
    stop = threading.Event()
    threads, counts, stats = [], {}, {"scrapes": 0, "bytes": 0, "errors": 0}
    saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    env.metrics_port = None
    if citizen:
        path = str(env.wd.path / "notify.sock")
        env.metrics_port = bench.h.free_port()
        threads.append(threading.Thread(target=notify_sink, args=(path, counts, stop)))
        threads.append(threading.Thread(target=scraper, args=(env.metrics_port, stats, stop)))
        os.environ["NOTIFY_SOCKET"] = path
        os.environ["WATCHDOG_USEC"] = "30000000"
        os.environ.pop("WATCHDOG_PID", None)
    for t in threads:
        t.start()
    try:
        res = bench.run_workload(env, 500, 1000, duration, 3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    res.update(counts=counts, scrape=stats)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="A/B pairs")
    ap.add_argument("--duration", type=int, default=30, help="window, s")
    ap.add_argument("--bin", default=os.path.join(bench.ROOT, "build", "modbridge"))
    ap.add_argument("--mbsim", default=os.path.join(bench.ROOT, "build", "bench", "mbsim"))
    args = ap.parse_args()
    args.one_endpoint = False
    rows = {False: [], True: []}
    with bench.h.Workdir("citizen_cost") as wd:
        env = CitizenEnv(wd, args)
        env.profile = None
        for i in range(args.runs):
            for citizen in ((False, True) if i % 2 == 0 else (True, False)):
                r = run(env, citizen, args.duration)
                rows[citizen].append(r)
                print("%s: CPU %.2f%%, HWM %.1f MB, delivered %d/%d, WATCHDOG=1 x%d, "
                      "%d scrapes of %d bytes" %
                      ("B citizen" if citizen else "A plain  ", r["cpu_pct"],
                       r["hwm_kb"] / 1024.0, r["delivered"], r["expected"],
                       r["counts"].get("WATCHDOG", 0), r["scrape"]["scrapes"],
                       r["scrape"]["bytes"]), flush=True)
        env.close()
    a = statistics.median(r["cpu_pct"] for r in rows[False])
    b = statistics.median(r["cpu_pct"] for r in rows[True])
    print("| variant | CPU (median of %d) | peak RSS |" % args.runs)
    print("|---|---|---|")
    print("| A plain | %.2f%% | %.1f MB |" % (a, statistics.median(r["hwm_kb"] for r in rows[False]) / 1024))
    print("| B watchdog + metrics scraped every 5 s | %.2f%% | %.1f MB |" %
          (b, statistics.median(r["hwm_kb"] for r in rows[True]) / 1024))
    print("difference: %+.2f points of one core (%+.1f%%)" % (b - a, 100 * (b - a) / a))


if __name__ == "__main__":
    main()
