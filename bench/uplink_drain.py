#!/usr/bin/python3
"""Drain of a stored backlog in the http and ftp send modes, against curl (issue 11).

HTTPS: a local nginx (TLS, answers 204 to anything) receives
  1. the backlog drained by modbridge (logger.mode: http, array mode, arrays of 50);
  2. the same arrays of 50 posted by one curl process over one reused connection (a curl
     config file with one `next` block per request).
FTPS: a local pyftpdlib (explicit TLS, tests/sim/ftp_server.py) receives
  3. the backlog uploaded by modbridge as JSON-lines files of 10,000 readings;
  4. the same files uploaded by one curl process (-T "{f1,f2,...}", one connection).
Rates are readings per second of wall time, from the start of the client to the last
reading confirmed (modbridge: the store is empty; curl: the process exits). CPU is the
client's user+system time per reading (modbridge: from /proc, start-up included).

Usage: bench/uplink_drain.py [N]   (default 100000; needs build/modbridge, nginx, curl)
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
import servers  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def payloads(n):
    v = list(range(47))
    for k in range(n):
        yield json.dumps({"IMEI": "357299070082380", "TYPE": "MODB", "TS": "2022-07-15T10:09:01Z",
                          "ID": "1", "A": "1", "ST": str(k), "N": "47", "V": v, "P": "ID-1234"},
                         separators=(",", ":"))


def start_nginx(wd, pki):
    port = harness.free_port()
    d = os.path.join(wd.path, "nginx")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""\
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_requests 1000000;
  client_max_body_size 10m;
  client_body_buffer_size 1m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {pki['server_cert']};
    ssl_certificate_key {pki['server_key']};
    location / {{ return 204; }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "stderr.log"), "w"))
    harness.wait_until(lambda: harness._port_open(port), 15, "nginx")  # pylint: disable=protected-access
    return proc, port


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def prefill(daemon, store, lines):
    # `queue` only looks; a first run creates the store and its schema.
    daemon.start(env=servers.NO_PROXY_ENV)
    daemon.wait_log(r"running:", 20)
    daemon.stop()
    con = sqlite3.connect(store)
    with con:
        con.executemany("INSERT INTO queue(ts_ms, device, payload) VALUES(0,'1',?)",
                        ((l,) for l in lines))
    con.close()


def drain(daemon, store, n, limit=600):
    t0 = time.time()
    daemon.start(env=servers.NO_PROXY_ENV)
    con = sqlite3.connect("file:%s?mode=ro" % store, uri=True)
    left = n
    t_first = None
    while time.time() - t0 < limit:
        left = con.execute("SELECT count(*) FROM queue").fetchone()[0]
        if left < n and t_first is None:
            t_first = time.time()  # the first confirmations are in: start-up is over
        if left == 0:
            break
        time.sleep(0.02)
    elapsed = time.time() - t0
    drain_s = time.time() - (t_first or t0)
    cpu = cpu_s(daemon.pid)
    con.close()
    daemon.stop()
    return n - left, elapsed, cpu, drain_s


def curl_run(argv):
    before = os.times()
    t0 = time.time()
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.time() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if res.returncode != 0:
        raise AssertionError("curl failed: %s" % res.stderr[-2000:])
    return elapsed, cpu


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    os.environ.setdefault("MODBRIDGE_BIN", BIN)
    rows = []
    with harness.Workdir("bench-uplinks") as wd:
        pki = harness.make_pki(wd.path)
        lines = list(payloads(n))
        size = sum(len(l) for l in lines) // n

        # ---- HTTPS, arrays of 50
        nginx, port = start_nginx(wd, pki)
        url = "https://localhost:%d/ingest" % port
        store = os.path.join(wd.path, "http.db")
        d = harness.Daemon(wd, f"""\
gateway: {{ imei: "BENCH" }}
modbus:
  devices:
    - {{ id: "x", address: "127.0.0.1:1", start: 0, count: 1, logger: false }}
logger:
  store: {store}
  mode: http
  array: true
  array_max_count: 50
http:
  url: {url}
  ca_file: {pki['ca']}
""", name="mb-http")
        prefill(d, store, lines)
        got, t, cpu, t_drain = drain(d, store, n)
        rows.append(("HTTPS, arrays of 50", "modbridge", got, t, cpu))
        drains = [("HTTPS", got / t_drain)]
        cfg = os.path.join(wd.path, "curl.cfg")
        bdir = os.path.join(wd.path, "batches")
        os.makedirs(bdir, exist_ok=True)
        with open(cfg, "w") as f:
            for i in range(0, n, 50):
                path = os.path.join(bdir, "%d.json" % i)
                with open(path, "w") as b:
                    b.write("[" + ",".join(lines[i:i + 50]) + "]")
                if i:
                    f.write("next\n")
                # Options do not carry over `next`: each block has them all.
                f.write('url = "%s"\ndata-binary = "@%s"\nheader = "Content-Type: application/json"\n'
                        'output = "/dev/null"\nfail\nsilent\nshow-error\ncacert = "%s"\n'
                        % (url, path, pki["ca"]))
        t, cpu = curl_run(["curl", "-K", cfg])
        rows.append(("HTTPS, arrays of 50", "curl, one connection", n, t, cpu))
        nginx.terminate()
        nginx.wait()

        # ---- FTPS, files of 10,000
        ftp = servers.FtpServer(wd, tls_pki=pki)
        ftp.start()
        store = os.path.join(wd.path, "ftp.db")
        d = harness.Daemon(wd, f"""\
gateway: {{ imei: "BENCH" }}
modbus:
  devices:
    - {{ id: "x", address: "127.0.0.1:1", start: 0, count: 1, logger: false }}
logger:
  store: {store}
  mode: ftp
ftp:
  url: {ftp.url()}
  username: {ftp.USER}
  password: {ftp.PASSWORD}
  ca_file: {pki['ca']}
  max_readings: 10000
  interval: 1h
""", name="mb-ftp")
        prefill(d, store, lines)
        got, t, cpu, t_drain = drain(d, store, n)
        drains.append(("FTPS", got / t_drain))
        nfiles = len(ftp.files())
        rows.append(("FTPS, files of 10,000", "modbridge (%d files)" % nfiles, got, t, cpu))
        fdir = os.path.join(wd.path, "files")
        os.makedirs(fdir, exist_ok=True)
        names = []
        for i in range(0, n, 10000):
            path = os.path.join(fdir, "f%d.json" % i)
            with open(path, "w") as b:
                b.write("".join(l + "\n" for l in lines[i:i + 10000]))
            names.append(path)
        t, cpu = curl_run(["curl", "-sS", "--ssl-reqd", "--cacert", pki["ca"], "-u",
                           "%s:%s" % (ftp.USER, ftp.PASSWORD), "-T", "{%s}" % ",".join(names),
                           ftp.url("curl/").replace("ftps://", "ftp://"), "--ftp-create-dirs"])
        rows.append(("FTPS, files of 10,000", "curl, one connection", n, t, cpu))
        ftp.stop()

    print("drain of %d stored readings (~%d bytes each), nproc %d" % (n, size, os.cpu_count()))
    print("| mode | client | readings | seconds | readings/s | CPU us/reading | rate vs curl |")
    print("|---|---|---|---|---|---|---|")
    for i, (mode, who, got, t, cpu) in enumerate(rows):
        ref = rows[i - (i % 2) + 1]
        print("| %s | %s | %d | %.2f | %.0f | %.1f | %.2f |" % (
            mode, who, got, t, got / t, cpu * 1e6 / max(got, 1), (got / t) / (ref[2] / ref[3])))
    print("modbridge without its start-up (from the first confirmed reading to the last): " +
          ", ".join("%s %.0f readings/s" % d for d in drains))


if __name__ == "__main__":
    main()
