#!/usr/bin/python3
"""Scenario: the disk fills up under the store, then space comes back (issue: logger).

The store lives on a small tmpfs. While no broker listens, 40 devices are polled every
second; a filler file then takes all free space. The gateway must log one clear "disk
full" error, keep polling into its bounded memory buffer, and store everything once the
filler is removed ("writable again"). After a restart with a broker, every device has a
reading for every second of the run: nothing was lost.

Needs root to mount the tmpfs; without it the test reports itself skipped (exit 77).
"""
import calendar
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEVICES = 40


def main():
    with harness.Workdir("diskfull") as wd:
        mnt = os.path.join(wd.path, "small")
        os.makedirs(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                          capture_output=True).returncode != 0:
            print("SKIPPED: cannot mount a tmpfs here (needs root)")
            sys.exit(77)
        try:
            run(wd, mnt)
        finally:
            subprocess.run(["umount", "-l", mnt], check=False)
    print("disk full: OK")


def run(wd, mnt):
    pki = harness.make_pki(wd.path)
    tcp_port = harness.free_port()
    sim = harness.ModbusSim(wd, {"servers": [
        {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 2000}}}}]})
    sim.start()
    devices = "".join(f'    - {{ id: "d{i}", address: "127.0.0.1:{tcp_port}", start: {i * 10}, count: 60, period: 1s }}\n'
                      for i in range(DEVICES))
    template = f"""\
gateway: {{ imei: "DISK" }}
modbus:
  devices:
{devices}logger:
  store: {mnt}/store.db
mqtt:
  broker: tcp://127.0.0.1:PORT
"""
    daemon = harness.Daemon(wd, template.replace("PORT", str(harness.free_port())))
    t_start = time.time()
    daemon.start()
    daemon.wait_log("cannot connect", 15)
    time.sleep(2)
    filler = os.path.join(mnt, "filler")
    harness.fill_disk(filler)  # take every free byte
    daemon.wait_log(r"cannot store readings: disk full", 30)
    time.sleep(3)  # keep polling into memory meanwhile
    assert daemon.proc.poll() is None, "the daemon must keep running"
    os.unlink(filler)
    daemon.wait_log(r"writable again", 30)
    time.sleep(2)
    assert daemon.stop() == 0
    t_stop = time.time()
    log = daemon.log()
    assert log.count("cannot store readings") == 1, "disk full must be logged once per episode"
    assert "lost" not in log, log

    broker = harness.Broker(wd, pki)
    broker.start()
    sub = harness.Subscriber(broker, "DISK/logger", qos=1)
    sub.start()
    daemon.write_config(template.replace("PORT", str(broker.port_plain)).replace("period: 1s", "period: 1s, logger: false"))
    daemon.start()

    def drained():
        out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        return "backlog  0\n" in out
    harness.wait_until(drained, 60, "the backlog to drain")
    assert daemon.stop() == 0
    got = {(json.loads(p)["ID"], calendar.timegm(time.strptime(json.loads(p)["TS"], "%Y-%m-%dT%H:%M:%SZ")))
           for _, p in sub.messages()}
    missing = [("d%d" % i, s) for i in range(DEVICES) for s in range(int(t_start) + 2, int(t_stop) - 1)
               if ("d%d" % i, s) not in got]
    assert not missing, "readings lost around the disk-full episode: %r" % missing[:10]
    print("disk full: %d readings, none lost across the disk-full episode" % len(got))
    sub.stop()
    broker.stop()
    sim.stop()


if __name__ == "__main__":
    main()
