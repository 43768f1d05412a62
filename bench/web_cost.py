#!/usr/bin/python3
"""What the web UI costs: binary size, RSS and CPU of the daemon without the UI, with the UI
on but nobody using it, and with the status page open (GET /api/status every 2 s, as the
page does). Prints a Markdown table (docs/web-ui.md holds the last one). Not a test.

    /usr/bin/python3 bench/web_cost.py [SECONDS_PER_PHASE]     (default 60)
    MODBRIDGE_BIN=... and BASELINE_BIN=... (a build without the UI) choose the binaries.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
from webclient import WebClient, password_hash, web_config  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def size_of(binary):
    out = subprocess.run(["size", binary], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
    return text + data + bss


def phase(d, seconds, poll=None):
    pid = d.pid
    c0, t0 = cpu_s(pid), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        if poll:
            poll()
        time.sleep(min(2.0, max(0.0, end - time.monotonic())))
    used = cpu_s(pid) - c0
    return rss_kb(pid), 100.0 * used / (time.monotonic() - t0)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    new = os.path.abspath(harness.default_binary())
    old = os.environ.get("BASELINE_BIN", "/work/baseline/build/modbridge")
    rows = []
    with harness.Workdir("web_cost") as wd:
        tcp = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [{"tcp": "127.0.0.1:%d" % tcp, "units": {
            "1": {"holding": {"identity": 100}}}}]})
        sim.start()
        port = harness.free_port()
        body = f"""\
gateway: {{ imei: "cost" }}
modbus:
  devices:
    - {{ id: "a", address: "127.0.0.1:{tcp}", start: 10, count: 10, period: 1s }}
    - {{ id: "b", address: "127.0.0.1:{tcp}", start: "1;20", count: "2;4", period: 1s }}
mqtt:
  enabled: false
logger:
  store: {wd.path}/store.db
"""
        web = web_config(port, [("admin", password_hash(new, "pw"))])
        runs = [("baseline (no web UI in the binary)", old, body, None),
                ("web UI built in, web.enabled false", new, body, None),
                ("web UI on, nobody logged in", new, web + body, None),
                ("web UI on, status page open (GET /api/status every 2 s)", new, web + body, True)]
        for i, (name, binary, cfg, poll) in enumerate(runs):
            if not os.access(binary, os.X_OK):
                continue
            d = harness.Daemon(wd, cfg.replace("store.db", f"store{i}.db"), name=f"d{i}",
                               binary=binary)
            d.start()
            d.wait_log(r"running: 2 device", 20)
            time.sleep(3)
            fn = None
            if poll:
                c = WebClient(port)
                c.login("admin", "pw")
                for page in ("/status", "/app.js", "/status.js", "/style.css", "/api/session"):
                    c.get(page)
                fn = lambda: c.get("/api/status")  # noqa: E731
            rss, cpu = phase(d, seconds, fn)
            d.stop()
            rows.append((name, size_of(binary), os.path.getsize(binary), rss, cpu))
    print("| daemon | text+data+bss | file (with debug info) | RSS | CPU |")
    print("|---|---|---|---|---|")
    for name, sz, fsz, rss, cpu in rows:
        print(f"| {name} | {sz / 1024:.0f} KiB | {fsz / 1024:.0f} KiB | {rss / 1024:.1f} MiB | {cpu:.2f} % |")
    print(f"\n{seconds:.0f} s per row, 2 Modbus TCP devices polled every second, MQTT off.")


if __name__ == "__main__":
    main()
