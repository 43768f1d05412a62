#!/usr/bin/python3
"""Scenario: `modbridge queue` only looks at the store (issue 9, item 4).

- A missing store is reported (exit 2) and nothing is created, not even its directory.
- A damaged store is reported (exit 1, saying that `modbridge run` moves it aside) and left
  byte for byte as it was, with no .corrupt-* file and no fresh store (before the fix, it
  was moved aside and `queue` reported "backlog 0" with exit 0).
- Beside a running daemon, `queue` reports the growing backlog, and the daemon goes on.
- With the daemon stopped, `queue` reports the same backlog and leaves no file behind
  (no -wal, no -shm).
- As a user who cannot write the store's directory (root can always write, so the test
  drops to `nobody` with setpriv), `queue` works with and without a running daemon.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def config(store):
    # No broker and no device that answers: every poll stores an ERR message.
    return f"""\
gateway: {{ imei: "LOOK" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:1", start: 10, count: 5, period: 1s }}
logger:
  store: {store}
mqtt:
  enabled: false
"""


def listing(top):
    out = {}
    for root, _dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, top)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def backlog(res):
    m = re.search(r"^backlog\s+(\d+)$", res.stdout, re.M)
    return int(m.group(1)) if m and res.returncode == 0 else None


def as_nobody(daemon):
    """`queue` as nobody; None when this machine cannot drop to nobody."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    argv = NOBODY + [daemon.bin, "queue", "-c", daemon.config_path]
    return subprocess.run(argv, capture_output=True, text=True, check=False,
                          timeout=30 * harness.TIMEOUT_SCALE)


def main():
    problems = []
    with harness.Workdir("queue_ro") as wd:
        os.chmod(wd.path, 0o755)  # nobody reads the configuration and the store below

        # 1. Missing: nothing is created.
        missing = harness.Daemon(wd, config(wd.path / "state" / "store.db"), name="missing")
        before = listing(wd.path)
        res = missing.run_cli("queue", "-c", missing.config_path)
        print(f"missing store: exit {res.returncode}: {res.stderr.strip()}")
        if res.returncode == 0 or "does not exist" not in res.stderr:
            problems.append(f"a missing store was not reported: {res}")
        if os.path.exists(wd.path / "state"):
            problems.append("queue created " + ", ".join(sorted(
                os.path.relpath(os.path.join(r, f), wd.path)
                for r, _d, fs in os.walk(wd.path / "state") for f in fs) or ["state/"]))
        if {k: v for k, v in listing(wd.path).items() if not k.endswith(".log")} != \
                {k: v for k, v in before.items() if not k.endswith(".log")}:
            problems.append("queue changed the work dir")

        # 2. Damaged: reported, left alone.
        bad_dir = wd.path / "bad"
        os.mkdir(bad_dir)
        bad = bad_dir / "store.db"
        garbage = b"SQLite format 3\0" + bytes(range(256)) * 64  # right magic, wrong content
        with open(bad, "wb") as fh:
            fh.write(garbage)
        damaged = harness.Daemon(wd, config(bad), name="damaged")
        res = damaged.run_cli("queue", "-c", damaged.config_path)
        print(f"damaged store: exit {res.returncode}: {res.stderr.strip()}")
        if res.returncode != 1 or "is damaged" not in res.stderr or \
                "modbridge run" not in res.stderr:
            problems.append(f"a damaged store was not reported as such: {res}")
        if sorted(os.listdir(bad_dir)) != ["store.db"]:
            problems.append(f"queue left {sorted(os.listdir(bad_dir))} in bad/")
        with open(bad, "rb") as fh:
            if fh.read() != garbage:
                problems.append("the damaged file was changed")

        # 3. Beside a running daemon.
        store = wd.path / "live" / "store.db"
        daemon = harness.Daemon(wd, config(store))
        daemon.start()
        daemon.wait_log(r"running: ", 15)
        harness.wait_until(lambda: (backlog(daemon.run_cli("queue", "-c", daemon.config_path))
                                    or 0) >= 2, 20, "a backlog of 2 readings")
        first = backlog(daemon.run_cli("queue", "-c", daemon.config_path))
        harness.wait_until(lambda: (backlog(daemon.run_cli("queue", "-c", daemon.config_path))
                                    or 0) > first, 20, "the backlog to grow")
        live = os.path.dirname(store)
        os.chmod(live, 0o755)  # readable by all, writable by root only (mkdir -p made it 0750)
        res = as_nobody(daemon)
        if res is not None:
            print(f"as nobody, daemon running: exit {res.returncode}, backlog {backlog(res)}")
            if backlog(res) is None or backlog(res) < first:
                problems.append(f"queue as nobody beside the daemon: {res}")
        if not daemon.running:
            problems.append("the daemon stopped")
        assert daemon.stop() == 0

        # 4. Daemon stopped: the same figures, and nothing left behind.
        files = sorted(os.listdir(live))
        before = listing(live)
        res = daemon.run_cli("queue", "-c", daemon.config_path)
        stored = backlog(res)
        print(f"daemon stopped: backlog {stored}; files before {files}, "
              f"after {sorted(os.listdir(live))}")
        if stored is None or stored < first:
            problems.append(f"queue after the stop: {res}")
        if listing(live) != before:
            problems.append(f"queue changed {live}: {files} -> {sorted(os.listdir(live))}")

        # 5. A directory the caller cannot write, the daemon stopped.
        for name in os.listdir(live):
            os.chmod(os.path.join(live, name), 0o644)
        res = as_nobody(daemon)
        if res is None:
            print("as nobody: skipped (needs root and setpriv)")
        else:
            print(f"as nobody, daemon stopped: exit {res.returncode}, backlog {backlog(res)}"
                  f"{': ' + res.stderr.strip() if res.returncode else ''}")
            if backlog(res) != stored:
                problems.append(f"queue as nobody on a read-only directory: {res}")
            if listing(live) != before:
                problems.append("queue as nobody changed the store's directory")

        assert not problems, "\n".join(problems)
    print("queue only looks: OK")


if __name__ == "__main__":
    main()
