#!/usr/bin/python3
"""Scenario: 1,100 healthy Modbus TCP endpoints and 100 that never answer, over 1,024
descriptors, run without an abort, on a constant number of threads.

libmodbus waits for each answer with select(), and glibc aborts a select() on a
descriptor of 1024 or more ("*** bit out of range 0 - FD_SETSIZE on fd_set ***"): with
that many endpoints (each one connection) the daemon used to die within seconds. Every TCP
endpoint is now served by one event loop (epoll). bench/mbsim plays the plant: 1,100 ports
that answer (register N holds N) and 100 that accept connections and never answer.

Checked: the daemon keeps running; for at least 5 whole seconds in a row every healthy
device has its reading ([5, 6]), with TS on the instant; the silent devices publish ERR
readings (timeouts, then back-off); the thread count never changes (the pool this loop
replaced grew with the silent endpoints).
"""
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HEALTHY = 1100
SILENT = 100
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WANT_FULL_SECONDS = 5


def mbsim_path():
    path = os.environ.get("MODBRIDGE_MBSIM") or os.path.join(ROOT, "build", "bench", "mbsim")
    return path if os.access(path, os.X_OK) else None


def threads(pid):
    with open("/proc/%d/status" % pid, encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def start_mbsim(wd, path):
    log = wd.path / "mbsim.out"
    out = open(log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    proc = harness._spawn([path, "-n", str(HEALTHY), "-s", str(SILENT)],  # pylint: disable=protected-access
                          "mbsim", stdout=out, stderr=subprocess.STDOUT)
    out.close()

    def ready():
        if proc.poll() is not None:
            raise AssertionError("mbsim exited: " + open(log, encoding="utf-8").read())
        return "READY" in open(log, encoding="utf-8").read()
    harness.wait_until(ready, 30, "mbsim READY")
    healthy, silent = [], []
    for line in open(log, encoding="utf-8"):
        kind, _, port = line.split() if line.startswith(("LISTEN", "SILENT")) else ("", 0, 0)
        if kind == "LISTEN":
            healthy.append(int(port))
        elif kind == "SILENT":
            silent.append(int(port))
    assert len(healthy) == HEALTHY and len(silent) == SILENT, (len(healthy), len(silent))
    return proc, healthy, silent


def main():
    path = mbsim_path()
    if not path:
        print("SKIP: bench/mbsim is not built (MODBRIDGE_BENCH=OFF)")
        sys.exit(77)
    with harness.Workdir("tcpscale") as wd:
        broker = harness.Broker(wd, harness.make_pki(wd.path))
        broker.start()
        sim, healthy, silent = start_mbsim(wd, path)
        devices = "".join(
            f'    - {{ id: h{i}, address: "127.0.0.1:{port}", start: 5, count: 2, '
            f'period: 1s }}\n' for i, port in enumerate(healthy))
        devices += "".join(
            f'    - {{ id: s{i}, address: "127.0.0.1:{port}", start: 5, count: 2, '
            f'period: 1s, timeout_ms: 500, retries: 0 }}\n' for i, port in enumerate(silent))
        config = f"""\
gateway: {{ imei: "SCALE" }}
modbus:
  devices:
{devices}logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
"""
        sub = harness.Subscriber(broker, "SCALE/logger", qos=1)
        sub.start()
        daemon = harness.Daemon(wd, config)
        daemon.start()
        daemon.wait_log(r"running: ", 30)
        counts = []
        per_second = collections.defaultdict(set)
        errors = collections.Counter()
        seen = [0]

        def full_seconds():
            if not daemon.running:
                raise AssertionError("the daemon exited (%s)\n%s" % (
                    daemon.proc.returncode, daemon.log()[-3000:]))
            counts.append(threads(daemon.pid))
            msgs = sub.messages()
            for _, payload in msgs[seen[0]:]:
                m = json.loads(payload)
                if m["ID"].startswith("h") and m.get("V") == [5, 6]:
                    per_second[m["TS"]].add(m["ID"])
                elif m["ID"].startswith("s"):
                    errors[m.get("ERR")] += 1
            seen[0] = len(msgs)
            full = sorted(ts for ts, ids in per_second.items() if len(ids) == HEALTHY)
            return len(full) >= WANT_FULL_SECONDS and sum(errors.values()) >= SILENT
        harness.wait_until(full_seconds, 60, "%d seconds with every healthy device read"
                           % WANT_FULL_SECONDS, interval=0.5)
        time.sleep(1)
        assert daemon.running, daemon.log()[-3000:]
        counts.append(threads(daemon.pid))
        assert daemon.stop() == 0
        assert min(counts) == max(counts), "the thread count changed: %r" % sorted(set(counts))
        assert set(errors) <= {"timeout", "not polled: device down (last error: timeout)"}, errors
        full = sorted(ts for ts, ids in per_second.items() if len(ids) == HEALTHY)
        sub.stop()
        harness._stop_proc(sim, "mbsim")  # pylint: disable=protected-access
        broker.stop()
    print("tcp scale: OK (%d endpoints, %d silent: %d whole seconds with all %d healthy devices "
          "read, %d ERR readings, %d threads throughout)"
          % (HEALTHY + SILENT, SILENT, len(full), HEALTHY, sum(errors.values()), counts[0]))


if __name__ == "__main__":
    main()
