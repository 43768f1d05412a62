#!/usr/bin/python3
"""Scenario: the seed in ftp mode over explicit FTPS, and what bad settings do (issue 11).

The router's application note, PLC1 and PLC2 on one RTU line, with logger.mode: ftp to a
pyftpdlib server that requires AUTH TLS, files as one JSON array (cut at 4 readings or
every 10 s):
- `check` shows the CA's fingerprint; the files hold the note's messages byte-exact
  (apart from TS), as "[m1,m2,...]", named [IMEI]_<first reading's time>-<its id>.json,
  over one control connection kept open;
- then, reloaded with SIGHUP each time: a CA that did not sign the server's certificate, a
  wrong password, a directory that does not exist: each is logged with a clear reason, no
  file is written, and the readings stay in the store;
- back to the right settings, every reading arrives, once, in order.
"""
import calendar
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import servers  # noqa: E402
import test_seed_scenario as seed  # noqa: E402

IMEI = seed.IMEI
NAME_RE = re.compile(r"^%s_(\d{8}T\d{6}Z)-(\d+)\.json$" % IMEI)


def config_text(base, ftp, pki, url=None, ca=None, password=None):
    return base + f"""\
ftp:
  url: {url or ftp.url()}
  username: {ftp.USER}
  password: {password or ftp.PASSWORD}
  ca_file: {ca or pki['ca']}
  format: array
  interval: 10s
  max_readings: 4
  timeout_ms: 10000
"""


def backlog(daemon):
    out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
    return int(re.search(r"backlog\s+(\d+)", out).group(1))


def check_file(name, data):
    m = NAME_RE.match(name)
    assert m, "unexpected file %r" % name
    items = json.loads(data)
    assert isinstance(items, list) and 1 <= len(items) <= 4, (name, data)
    want = []
    for it in items:
        golden = seed.golden("seed_plc1.json" if it["ID"] == "1" else "seed_plc2.json")
        want.append(seed.TS_RE.sub('"TS":"%s"' % it["TS"], golden))
    assert data.decode() == "[" + ",".join(want) + "]", "%s:\n got  %s\n want %s" % (
        name, data.decode(), "[" + ",".join(want) + "]")
    first = calendar.timegm(time.strptime(items[0]["TS"], "%Y-%m-%dT%H:%M:%SZ"))
    assert time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(first)) == m.group(1), name
    return int(m.group(2)), [(it["ID"], it["TS"]) for it in items]


def main():
    with harness.Workdir("ftps-mode") as wd:
        pki = harness.make_pki(wd.path)
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 2000}},
                       "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}}]})
        sim.start()
        ftp = servers.FtpServer(wd, tls_pki=pki)
        ftp.start()
        # The seed's configuration without its mqtt section, in ftp mode.
        broker_stub = type("B", (), {"port_tls_cert": 1})()
        base = seed.seed_config(wd, pty, broker_stub, pki).replace("  mode: mqtt\n", "  mode: ftp\n")
        base = re.sub(r"mqtt:\n(  .*\n)+", "", base)
        daemon = harness.Daemon(wd, config_text(base, ftp, pki))
        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert re.search(r"ftp.ca_file .*SHA1 ([0-9A-F]{2}:){19}[0-9A-F]{2}", check.stdout), check.stdout
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"ftp: files in ftps://127.0.0.1.*TLS verified", 20)
        harness.wait_until(lambda: len(ftp.files()) >= 2, 40, "2 files")
        for name, data in ftp.files().items():
            check_file(name, data)
        # One control connection, kept while the uploads follow each other.
        sessions = len(set(re.findall(r"127\.0\.0\.1:(\d+)-\[gw\] STOR", ftp.log())))
        assert sessions == 1, "%d control connections for %d files" % (sessions, len(ftp.files()))
        # (The server refuses USER before AUTH TLS and data without PROT P.)

        bad = [
            ("a CA that did not sign the server's certificate", {"ca": pki["wrong_ca"]},
             r"ftp: cannot upload .*(SSL certificate problem|certificate verify|unable to get local issuer)"),
            ("a wrong password", {"password": "not-the-password"},
             r"ftp: cannot upload .*(Access denied|Login denied|530)"),
            ("a directory that does not exist", {"url": ftp.url("nope/")},
             r"ftp: cannot upload .*(denied you to change|CWD|550)"),
        ]
        for what, kw, pattern in bad:
            n_files = len(ftp.files())
            off = daemon.log_offset()
            daemon.write_config(config_text(base, ftp, pki, **kw))
            daemon.signal(signal.SIGHUP)
            daemon.wait_log(r"restarting with the configuration", 10, since=off)
            daemon.wait_log(pattern, 40, since=off)
            b = backlog(daemon)
            time.sleep(3)
            assert backlog(daemon) >= b, "%s: readings left the store" % what
            assert len(ftp.files()) == n_files, "%s: a file was written" % what
            print("%s: %s" % (what, re.search(pattern, daemon.log()[off:]).group(0)[:200]))

        n_files = len(ftp.files())
        daemon.write_config(config_text(base, ftp, pki))
        daemon.signal(signal.SIGHUP)
        harness.wait_until(lambda: len(ftp.files()) > n_files, 30, "a file after the fix")
        harness.wait_until(lambda: backlog(daemon) <= 4, 60, "the backlog to drain")
        time.sleep(2)
        assert daemon.stop() == 0
        files = sorted(check_file(n, d) for n, d in ftp.files().items())
        for dev in ("1", "2"):
            ts = [calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
                  for _, items in files for d, t in items if d == dev]
            assert ts == sorted(ts) and len(ts) == len(set(ts)), "device %s: %r" % (dev, ts)
            missing = sorted(set(range(ts[0], ts[-1] + 1, 2)) - set(ts))
            assert not missing, "device %s: lost %r" % (dev, missing)
        print("ftps mode: %d files, byte-exact, nothing lost through three bad settings" % len(files))
        sim.stop()
        pty.stop()
        ftp.stop()
    print("ftps mode: OK")


if __name__ == "__main__":
    main()
