#!/usr/bin/python3
"""Scenario: store directories, and start-up errors that name their cause (issue 9, item 6).

- A store whose directory is two levels missing: `run` creates both (mode 0750), as the
  documentation says (before the fix it refused to start).
- A store directory the daemon's user cannot write: `run` exits 2 naming the path, the
  OS's reason ("Permission denied") and what to do (before: "cannot open: store error").
  Root can write anywhere, so the daemon runs as `nobody` (setpriv); that part is skipped
  where the test cannot drop to another user.
- A store path through a regular file: exit 2, "Not a directory", and what to fix.
"""
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def config(store):
    return f"""\
gateway: {{ imei: "DIRS" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:1", start: 10, count: 5, period: 1s }}
logger:
  store: {store}
mqtt:
  enabled: false
"""


def main():
    problems = []
    with harness.Workdir("store_dirs") as wd:
        # 1. Two missing levels are created.
        store = wd.path / "var" / "lib" / "store.db"
        daemon = harness.Daemon(wd, config(store), name="deep")
        daemon.start()
        try:
            daemon.wait_log(r"running: ", 15)
            for d in (wd.path / "var", wd.path / "var" / "lib"):
                mode = stat.S_IMODE(os.stat(d).st_mode)
                if mode != 0o750:
                    problems.append(f"{d} has mode {mode:o}, not 750")
            print("two missing levels: created")
        except AssertionError:
            problems.append("a store two directory levels down was refused:\n" +
                            daemon.log()[-600:])
        daemon.stop()

        # 2. A directory the daemon's user cannot write.
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            print("unwritable directory: skipped (needs root and setpriv to run as nobody)")
        else:
            os.chmod(wd.path, 0o755)
            locked = wd.path / "locked"
            os.mkdir(locked, 0o755)  # root's: nobody may read it, not create files in it
            cfg = wd.write("nobody.yaml", config(locked / "store.db"))
            os.chmod(cfg, 0o644)
            bin_ = harness.default_binary()
            res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                                  "--clear-groups", "--", bin_, "run", "-c", cfg],
                                 capture_output=True, text=True, check=False,
                                 timeout=30 * harness.TIMEOUT_SCALE)
            print(f"unwritable directory: exit {res.returncode}: {res.stderr.strip()}")
            if res.returncode != 2:
                problems.append(f"unwritable directory: exit {res.returncode}, not 2")
            for needed in (str(locked), "Permission denied", "owner or mode"):
                if needed not in res.stderr:
                    problems.append(f"unwritable directory: {needed!r} not in the message")
            if os.listdir(locked):
                problems.append(f"files appeared in {locked}: {os.listdir(locked)}")

        # 3. A path through a regular file.
        plain = wd.write("plainfile", "not a directory\n")
        daemon = harness.Daemon(wd, config(os.path.join(plain, "sub", "store.db")),
                                name="notdir")
        res = daemon.run_cli("run", "-c", daemon.config_path, timeout=20)
        print(f"path through a file: exit {res.returncode}: {res.stderr.strip()}")
        if res.returncode != 2:
            problems.append(f"path through a file: exit {res.returncode}, not 2")
        for needed in (plain, "Not a directory", "fix logger.store"):
            if needed not in res.stderr:
                problems.append(f"path through a file: {needed!r} not in the message")

        assert not problems, "\n".join(problems)
    print("store directories and their errors: OK")


if __name__ == "__main__":
    main()
