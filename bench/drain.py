#!/usr/bin/python3
"""Drain rate of a stored backlog, against mosquitto_pub -l (issue: logger).

For each listener (plain TCP, and TLS with a client certificate) of one local mosquitto:
  1. mosquitto_pub -l publishes N ~260-byte JSON lines at QoS 1 (in chunks of 50,000 per
     process: one process given 100,000 lines at QoS 1 silently loses most of them);
  2. modbridge drains a backlog of the same N payloads from its store at QoS 1
     (store prefilled; no devices polled), with the default in-flight window and a larger one.
In both cases a separate `mosquitto_sub -C N` at QoS 1 receives them; the rate is
N / (time from the publisher's start to the subscriber's last message). Everything runs
in one process tree, side by side, on the same broker.

Usage: bench/drain.py [N]   (default 100000; needs build/modbridge)
"""
import json
import os
import sqlite3
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BIN = os.environ.get("MODBRIDGE_BIN", os.path.join(ROOT, "build", "modbridge"))
import harness  # noqa: E402


def payloads(n):
    v = list(range(47))
    for k in range(n):
        yield json.dumps({"IMEI": "357299070082380", "TYPE": "MODB", "TS": "2022-07-15T10:09:01Z",
                          "ID": "1", "A": "1", "ST": str(k), "N": "47", "V": v, "P": "ID-1234"},
                         separators=(",", ":"))


def start_sub(broker, listener, topic, n, out):
    argv = ["mosquitto_sub"] + broker.client_args(listener) + ["-t", topic, "-q", "1", "-C", str(n),
                                                             "-i", "bench-sub-%d" % time.time_ns()]
    proc = subprocess.Popen(argv, stdout=open(out, "w"), stderr=subprocess.STDOUT)
    time.sleep(0.5)  # let it subscribe
    return proc


def finish(proc, out, n, t0, limit):
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait()
    t1 = time.time()
    with open(out) as f:
        got = sum(1 for _ in f)
    return got, t1 - t0


CHUNK = 50000  # mosquitto_pub -l loses QoS 1 messages past 65535 (message ids wrap)


def bench_pub(broker, listener, wd, n, lines):
    """mosquitto_pub -l, fed in chunks of CHUNK lines (one process each) so that it loses
    nothing: a single process silently drops most of a 100,000-line input at QoS 1."""
    with open(lines) as f:
        all_lines = f.readlines()
    chunks = []
    for i in range(0, n, CHUNK):
        path = os.path.join(wd.path, "chunk-%d.txt" % i)
        with open(path, "w") as f:
            f.writelines(all_lines[i:i + CHUNK])
        chunks.append(path)
    out = os.path.join(wd.path, "pub-%s.out" % listener)
    sub = start_sub(broker, listener, "bench/pub/" + listener, n, out)
    t0 = time.time()
    for path in chunks:
        subprocess.run(["mosquitto_pub"] + broker.client_args(listener) +
                       ["-t", "bench/pub/" + listener, "-q", "1", "-l", "-i", "bench-pub"],
                       stdin=open(path), check=False)
    return finish(sub, out, n, t0, 60)


def bench_modbridge(broker, listener, wd, n, window, lines):
    name = "mb-%s-%d" % (listener, window)
    store = os.path.join(wd.path, name + ".db")
    pki = broker.pki
    tls = ""
    if listener == "tls_cert":
        tls = (f"  ca_file: {pki['ca']}\n  cert_file: {pki['client_cert']}\n"
               f"  key_file: {pki['client_key']}\n")
    scheme = "ssl" if listener.startswith("tls") else "tcp"
    config = f"""\
gateway: {{ imei: "BENCH" }}
modbus:
  devices:
    - {{ id: "x", address: "127.0.0.1:1", start: 0, count: 1, logger: false }}
logger:
  store: {store}
  topic: bench/{name}
  inflight_window: {window}
mqtt:
  broker: {scheme}://{broker.host if scheme == 'tcp' else 'localhost'}:{broker.ports[listener]}
  client_id: {name}
  qos: 1
{tls}"""
    d = harness.Daemon(wd, config, name=name)
    d.run_cli("queue", "-c", d.config_path)  # creates the store and its schema
    con = sqlite3.connect(store)
    with con, open(lines) as f:
        con.executemany("INSERT INTO queue(ts_ms, device, payload) VALUES(0,'1',?)",
                        ((line.rstrip("\n"),) for line in f))
    con.close()
    out = os.path.join(wd.path, name + ".out")
    sub = start_sub(broker, listener, "bench/" + name, n, out)
    t0 = time.time()
    d.start()
    got, elapsed = finish(sub, out, n, t0, 120)
    d.stop()
    return got, elapsed


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    os.environ.setdefault("MODBRIDGE_BIN", BIN)
    with harness.Workdir("bench-drain") as wd:
        lines = os.path.join(wd.path, "payloads.txt")
        with open(lines, "w") as f:
            for p in payloads(n):
                f.write(p + "\n")
        size = os.path.getsize(lines) // n
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        rows = []
        for listener, label in (("plain", "plain TCP"), ("tls_cert", "TLS + client cert")):
            got_p, t_p = bench_pub(broker, listener, wd, n, lines)
            rate_p = got_p / t_p
            rows.append((label, "mosquitto_pub -l", got_p, t_p, rate_p, 1.0))
            for window in (256, 512):  # the default, and a larger one
                got_m, t_m = bench_modbridge(broker, listener, wd, n, window, lines)
                rate_m = got_m / t_m
                rows.append((label, "modbridge, window %d" % window, got_m, t_m, rate_m, rate_m / rate_p))
        broker.stop()
    print("drain of %d stored readings (~%d bytes each), QoS 1, local mosquitto, nproc %d"
          % (n, size, os.cpu_count()))
    print("| listener | publisher | received | seconds | messages/s | ratio to mosquitto_pub |")
    print("|---|---|---|---|---|---|")
    for label, who, got, t, rate, ratio in rows:
        print("| %s | %s | %d | %.2f | %.0f | %.2f |" % (label, who, got, t, rate, ratio))


if __name__ == "__main__":
    main()
