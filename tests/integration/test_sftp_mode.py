#!/usr/bin/python3
"""Scenario: ftp mode over SFTP, with key authentication and the host key checked (issue 11).

An sshd from openssh-server on a free port (its own host key and authorized_keys; root
only: exits 77 otherwise), a known_hosts file made by the test:
- the seed's messages arrive byte-exact in JSON-lines files, renamed from their temporary
  names, with no temporary file left;
- a 20 s sshd outage while polling every second loses nothing and keeps the order;
- kill -9 mid-way, then a restart: nothing lost, no reading in two files;
- an unknown host key, a key the server does not know and a directory that does not
  exist (each reloaded with SIGHUP) are logged with a clear reason, and lose nothing.
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

OUTAGE_S = 20
IMEI = seed.IMEI
NAME_RE = re.compile(r"^%s_(\d{8}T\d{6}Z)-(\d+)\.json$" % IMEI)


def config_text(base, ssh, url=None, key=None, known_hosts=None):
    return base + f"""\
ftp:
  url: {url or ssh.url()}
  username: root
  key_file: {key or ssh.client_key}
  known_hosts: {known_hosts or ssh.known_hosts}
  interval: 5s
  max_readings: 6
  timeout_ms: 10000
"""


def backlog(daemon):
    out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
    return int(re.search(r"backlog\s+(\d+)", out).group(1))


def parse(files):
    out = []
    for name, data in files.items():
        m = NAME_RE.match(name)
        assert m, "unexpected file %r (a temporary file left?)" % name
        lines = data.decode().splitlines()
        for line in lines:
            dev = json.loads(line)["ID"]
            golden = seed.golden("seed_plc1.json" if dev == "1" else "seed_plc2.json")
            assert seed.without_ts(line) == seed.without_ts(golden), (name, line)
        out.append((int(m.group(2)), name, [(json.loads(l)["ID"], calendar.timegm(
            time.strptime(json.loads(l)["TS"], "%Y-%m-%dT%H:%M:%SZ"))) for l in lines]))
    return sorted(out)


def main():
    if os.geteuid() != 0:
        print("test_sftp_mode: needs root (it runs its own sshd); skipped")
        sys.exit(77)
    with harness.Workdir("sftp-mode") as wd:
        pki = harness.make_pki(wd.path)
        pty = harness.PtyPair(wd)
        pty.start()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "parity": "N", "bytesize": 8, "stopbits": 1,
             "units": {"1": {"holding": {"identity": 2000}},
                       "2": {"holding": {"values": {"10": [10, 11, 12, 0, 0]}}}}}]})
        sim.start()
        ssh = servers.SshServer(wd)
        ssh.start()
        broker_stub = type("B", (), {"port_tls_cert": 1})()
        base = seed.seed_config(wd, pty, broker_stub, pki).replace("  mode: mqtt\n", "  mode: ftp\n")
        base = re.sub(r"mqtt:\n(  .*\n)+", "", base)
        # Device 2 every second (the outage and the kill count its readings).
        base = base.replace("      start: 10\n      count: 5\n      type: word\n      period: 2s",
                            "      start: 10\n      count: 5\n      type: word\n      period: 1s")
        daemon = harness.Daemon(wd, config_text(base, ssh))
        check = daemon.run_cli("check", "-c", daemon.config_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "host key is checked against " + ssh.known_hosts in check.stdout, check.stdout
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"ftp: files in sftp://127.0.0.1.*SSH, host key checked", 20)
        harness.wait_until(lambda: len(ssh.files()) >= 2, 40, "2 files")
        parse(ssh.files())

        # ---- 20 s outage
        ssh.stop()
        t_down = time.time()
        daemon.wait_log(r"ftp: cannot upload .*(Couldn't connect|Failed to connect)", 20)
        time.sleep(OUTAGE_S - 4)
        assert backlog(daemon) >= OUTAGE_S - 8, "backlog not kept during the outage"
        time.sleep(4)
        ssh.start()
        t_up = time.time()
        harness.wait_until(lambda: backlog(daemon) <= 8, 60, "the backlog to drain")

        # ---- kill -9, restart
        daemon.kill9()
        t_kill = time.time()
        time.sleep(1)
        daemon.start(env=servers.NO_PROXY_ENV)
        daemon.wait_log(r"running: 2 device", 10)
        t_start = time.time()
        harness.wait_until(lambda: backlog(daemon) <= 8, 30, "the backlog after the restart")

        # ---- bad settings
        bad = [
            ("an unknown host key", {"known_hosts": ssh.wrong_known_hosts},
             r"ftp: cannot upload .*host key (is not in known_hosts|does NOT match)"),
            ("a key the server does not know", {"key": ssh.wrong_client_key},
             r"ftp: cannot upload .*(Authentication failure|authentication|Login denied|publickey)"),
            ("a directory that does not exist", {"url": ssh.url(ssh.base + "/nope")},
             r"ftp: cannot upload .*(No such file|not found|Upload failed|Could not open)"),
        ]
        for what, kw, pattern in bad:
            n_files = len(ssh.files())
            off = daemon.log_offset()
            daemon.write_config(config_text(base, ssh, **kw))
            daemon.signal(signal.SIGHUP)
            daemon.wait_log(r"restarting with the configuration", 10, since=off)
            daemon.wait_log(pattern, 30, since=off)
            assert len(ssh.files()) == n_files, "%s: a file was written" % what
            print("%s: %s" % (what, re.search(pattern, daemon.log()[off:]).group(0)[:220]))
        n_files = len(ssh.files())
        daemon.write_config(config_text(base, ssh))
        daemon.signal(signal.SIGHUP)
        harness.wait_until(lambda: len(ssh.files()) > n_files, 30, "a file after the fix")
        harness.wait_until(lambda: backlog(daemon) <= 8, 30, "the backlog to drain")
        time.sleep(1)
        assert daemon.stop() == 0

        files = parse(ssh.files())
        for dev, period in (("1", 2), ("2", 1)):
            s = [t for _, _, items in files for d, t in items if d == dev]
            assert len(s) == len(set(s)), "device %s: a reading in two files" % dev
            assert s == sorted(s), "device %s: order broken" % dev
            dead = set(range(int(t_kill), int(t_start) + 2))
            missing = sorted(set(range(s[0], s[-1] + 1, period)) - set(s) - dead)
            if dev == "2":
                assert not missing, "device %s: lost %r" % (dev, missing)
                outage = [x for x in s if t_down + 1 < x < t_up - 1]
                assert len(outage) >= OUTAGE_S - 4, "only %d outage readings" % len(outage)
            else:
                # Device 1 shares the 9600 baud line: on its 2 s grid, no gap beyond restarts.
                assert len(missing) <= 6, "device 1: lost %r" % missing
        print("sftp mode: %d files, byte-exact, nothing lost through a %d s outage, a kill -9 "
              "and three bad settings" % (len(files), OUTAGE_S))
        sim.stop()
        pty.stop()
        ssh.stop()
    print("sftp mode: OK")


if __name__ == "__main__":
    main()
