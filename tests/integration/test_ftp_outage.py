#!/usr/bin/python3
"""Scenario: ftp mode through a 20 s server outage and a kill -9 mid-upload (issue 11).

A gateway polls a Modbus TCP device every second and uploads JSON-lines files (cut every
5 s, or at 5 readings) to a plain FTP server (pyftpdlib):
- the server goes away for 20 s: nothing is lost, the files come afterwards, in order;
- the daemon is killed with SIGKILL while a file is being uploaded (the server reads
  slowly, the temporary ".<name>.part" file is there): after a restart nothing is lost,
  no reading is in two files (the file sent again has the same name and replaces the
  first), and no temporary file is left.
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
NAME_RE = re.compile(r"^GW-FTP_(\d{8}T\d{6}Z)-(\d+)\.json$")


def backlog(daemon):
    out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
    return int(re.search(r"backlog\s+(\d+)", out).group(1))


def file_readings(files):
    """{name: [ts, ...]} for the final files (checked names), in the order of their ids."""
    out = []
    for name, data in files.items():
        m = NAME_RE.match(name)
        assert m, "unexpected file %r (a temporary file left?) in %r" % (name, sorted(files))
        lines = data.decode().splitlines()
        assert data.endswith(b"\n") and lines, name
        ts = [calendar.timegm(time.strptime(json.loads(l)["TS"], "%Y-%m-%dT%H:%M:%SZ")) for l in lines]
        # Named after the first reading: its time is in the name.
        assert time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts[0])) == m.group(1), (name, ts)
        assert len(ts) <= 5, (name, len(ts))
        out.append((int(m.group(2)), name, ts))
    return sorted(out)


def main():
    with harness.Workdir("ftp-outage") as wd:
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 100}}}}]})
        sim.start()
        ftp = servers.FtpServer(wd)
        ftp.start()
        config = f"""\
gateway: {{ imei: "GW-FTP" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:{tcp_port}", start: 10, count: 5, period: 1s }}
logger:
  store: {wd.path}/store.db
  mode: ftp
ftp:
  url: {ftp.url()}
  username: {ftp.USER}
  password: {ftp.PASSWORD}
  interval: 5s
  max_readings: 5
  timeout_ms: 30000
"""
        daemon = harness.Daemon(wd, config)
        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0 and "send mode: ftp" in check.stdout, check.stdout + check.stderr
        daemon.start(env=servers.NO_PROXY_ENV)
        harness.wait_until(lambda: len(ftp.files()) >= 2, 30, "2 files")

        # ---- 20 s outage
        ftp.stop()
        t_down = time.time()
        daemon.wait_log(r"ftp: cannot upload .*(Couldn't connect|Failed to connect)", 15)
        time.sleep(OUTAGE_S - 4)
        assert backlog(daemon) >= OUTAGE_S - 8, "backlog not kept during the outage"
        time.sleep(4)
        # Back, but reading slowly: an upload takes seconds, a moment to kill the daemon in.
        ftp.throttle = 100
        ftp.start()
        t_up = time.time()
        harness.wait_until(lambda: any(n.endswith(".part") for n in ftp.files()), 40,
                           "an upload in progress")
        daemon.kill9()
        t_kill = time.time()
        parts = [n for n in ftp.files() if n.endswith(".part")]
        ftp.stop()
        ftp.throttle = 0
        ftp.start()
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"running: 1 device", 10)
        t_start = time.time()
        harness.wait_until(lambda: backlog(daemon) <= 5 and
                           not any(n.endswith(".part") for n in ftp.files()), 60,
                           "the backlog to drain")
        time.sleep(6)
        assert daemon.stop() == 0
        sim.stop()

        files = file_readings(ftp.files())
        s = [t for _, _, ts in files for t in ts]
        assert len(s) == len(set(s)), "a reading is in two files: %r" % [
            (n, ts) for _, n, ts in files if any(s.count(t) > 1 for t in ts)]
        assert s == sorted(s), "files out of order: %r" % [(n, ts) for _, n, ts in files]
        dead = set(range(int(t_kill) + 1, int(t_start) + 1))
        missing = sorted(set(range(min(s), max(s) + 1)) - set(s) - dead)
        assert not missing, "readings lost: %r" % missing
        outage = [x for x in s if t_down + 1 < x < t_up - 1]
        assert len(outage) >= OUTAGE_S - 4, "only %d readings from the outage" % len(outage)
        print("ftp outage: %d readings in %d files, %d taken during the %d s outage, none lost, "
              "order kept; kill -9 during the upload of %s: no reading in two files, no "
              "temporary file left" % (len(s), len(files), len(outage), OUTAGE_S, parts))
    print("ftp outage: OK")


if __name__ == "__main__":
    main()
