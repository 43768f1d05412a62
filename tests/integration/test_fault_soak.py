#!/usr/bin/python3
"""Scenario: a bounded fault soak through the pipeline (broker, disk, daemon crashes).

Ten Modbus TCP devices whose first register counts every read (each reading is unique) are
polled every second while three cycles of faults go by:
  1. the broker stops for 4 s (with persistence, so the subscriber's session survives it)
     and comes back;
  2. the store's tmpfs fills up for 4 s while the broker is up (readings are then sent from
     memory; removals of delivered readings fail), and is freed again;
  3. the daemon is killed with SIGKILL half-way between two polls, and restarted at once.
Finally the daemon is stopped, and what is left in the store is drained by one more run.

Asserts:
  * every reading the daemon produced arrives at the subscriber;
  * duplicates stay within the window (32) per crash and per broker restart;
  * no sanitizer report in the daemon's log (the ASan and TSan stages run this test with
    their binaries).

The broker is stopped with SIGTERM, not SIGKILL: a broker killed with -9 loses what it had
acknowledged to us but not yet forwarded or saved, which is mosquitto's loss, not ours.
Needs root to mount the tmpfs; without it the test reports itself skipped (exit 77).
"""
import collections
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

DEVICES = 10
WINDOW = 32
CYCLES = 3


def main():
    with harness.Workdir("soak") as wd:
        mnt = os.path.join(wd.path, "small")
        os.makedirs(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                          capture_output=True, check=False).returncode != 0:
            print("SKIPPED: cannot mount a tmpfs here (needs root)")
            sys.exit(77)
        try:
            run(wd, mnt)
        finally:
            subprocess.run(["umount", "-l", mnt], check=False)


def produced(log):
    """(device, counter) of every reading the daemon encoded (logged at -v)."""
    out = []
    for m in re.finditer(r"debug: device (d\d+): (\{.*\})$", log, re.M):
        r = json.loads(m.group(2))
        if "V" in r:
            out.append((r["ID"], r["V"][0]))
    return out


def mid_second():
    """Sleep until half-way between two polls (every reading of the last instant is stored
    by then)."""
    frac = time.time() % 1.0
    time.sleep((0.5 - frac) % 1.0)


def run(wd, mnt):
    pki = harness.make_pki(wd.path)
    tcp_port = harness.free_port()
    sim = harness.ModbusSim(wd, {"servers": [
        {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {
            "holding": {"identity": 1000}, "count_up": [i * 20 for i in range(DEVICES)]}}}]})
    sim.start()
    broker = harness.Broker(wd, pki, persistence=True)
    broker.start()
    sub = harness.Subscriber(broker, "SOAK/logger", qos=1, client_id="soak-sub", clean=True)
    sub.start()
    devices = "".join(f'    - {{ id: "d{i}", address: "127.0.0.1:{tcp_port}", start: {i * 20}, '
                      f'count: 20, period: 1s }}\n' for i in range(DEVICES))
    config = f"""\
gateway: {{ imei: "SOAK" }}
modbus:
  devices:
{devices}logger:
  store: {mnt}/store.db
  inflight_window: {WINDOW}
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  client_id: soak-gw
"""
    daemon = harness.Daemon(wd, config)
    daemon.start()
    daemon.wait_log("mqtt: connected", 20)
    filler = os.path.join(mnt, "filler")
    kills = restarts = 0
    for cycle in range(CYCLES):
        # 1. The broker goes away and comes back.
        at = daemon.log_offset()
        broker.stop()
        restarts += 1
        time.sleep(4)
        broker.start()
        daemon.wait_log("mqtt: connected", 30, since=at)

        # 2. The disk fills up under the store while the broker is up, then is freed.
        at = daemon.log_offset()
        harness.fill_disk(filler)
        daemon.wait_log(r"cannot store readings: disk full", 30, since=at)
        time.sleep(4)
        os.unlink(filler)
        daemon.wait_log(r"writable again", 30, since=at)
        if re.search(r"cannot remove \d+ delivered", daemon.log()[at:]):
            daemon.wait_log(r"delivered readings removed again", 30, since=at)

        # 3. A crash half-way between two polls, and a restart.
        mid_second()
        daemon.kill9()
        kills += 1
        daemon.start()
        daemon.wait_log("mqtt: connected", 30)
        print("cycle %d done" % (cycle + 1), flush=True)

    time.sleep(2)
    assert daemon.stop(timeout=20) == 0
    # Whatever is still in the store goes out in a last run that polls nothing.
    daemon.write_config(config.replace("period: 1s", "period: 1s, logger: false"))
    daemon.start()
    daemon.wait_log(r"info: running:", 20)

    def drained():
        out = daemon.run_cli("queue", "-c", daemon.config_path).stdout
        return "backlog  0\n" in out
    harness.wait_until(drained, 60, "the backlog to drain")
    assert daemon.stop() == 0
    log = daemon.log()
    assert "Sanitizer" not in log, [ln for ln in log.splitlines() if "Sanitizer" in ln][:5]
    assert " are lost" not in log, [ln for ln in log.splitlines() if " are lost" in ln]

    made = produced(log)
    assert len(made) >= DEVICES * 30, len(made)
    harness.wait_until(lambda: set(made) <= {
        (json.loads(p)["ID"], json.loads(p)["V"][0]) for _, p in sub.messages()}, 20,
        "every produced reading at the subscriber")
    got = collections.Counter((json.loads(p)["ID"], json.loads(p)["V"][0])
                              for _, p in sub.messages())
    dups = sum(n - 1 for n in got.values())
    bound = WINDOW * (kills + restarts)
    assert dups <= bound, "%d duplicates for %d crashes and %d broker restarts (bound %d)" % (
        dups, kills, restarts, bound)
    print("fault soak: %d cycles, %d readings produced, all delivered, %d duplicates "
          "(bound %d)" % (CYCLES, len(made), dups, bound))
    sub.stop()
    broker.stop()
    sim.stop()


if __name__ == "__main__":
    main()
