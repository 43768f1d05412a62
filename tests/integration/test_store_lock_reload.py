#!/usr/bin/python3
"""Scenario: the store's lock is held across restarts (issue 9, item 3).

A daemon's store stays locked while SIGHUP restarts it (the store is closed and opened
again in between). A reload that moves logger.store locks the new store before it lets
the old one go; a reload to a store that another daemon holds is refused, and the daemon
goes on with its previous configuration, still holding its store.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def config(store):
    # No broker and no device that answers: readings (ERR messages) only go to the store.
    return f"""\
gateway: {{ imei: "RELOCK" }}
modbus:
  devices:
    - {{ id: "2", address: "127.0.0.1:1", start: 10, count: 5, period: 1s }}
logger:
  store: {store}
mqtt:
  enabled: false
"""


def refused(wd, name, store, holder):
    """Starts another daemon on store; True when it exits 2 naming holder's pid."""
    other = harness.Daemon(wd, config(store), name=name)
    other.start()
    try:
        other.wait_log(r"running: ", 8)
        other.stop()
        return False
    except AssertionError:
        pass
    rc = other.stop()
    return rc == 2 and f"store {store} is in use by modbridge (pid {holder.pid})" in other.log()


def main():
    problems = []
    with harness.Workdir("relock") as wd:
        one, two = wd.path / "one.db", wd.path / "two.db"
        daemon = harness.Daemon(wd, config(one))
        daemon.start()
        daemon.wait_log(r"running: ", 15)

        # A plain reload: the store is closed and opened again, the lock stays.
        offset = daemon.log_offset()
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"running: .*one\.db", 15, since=offset)
        if not refused(wd, "after_hup", one, daemon):
            problems.append("after SIGHUP, a second daemon was not refused on one.db")

        # A reload to another store: two.db is locked, one.db is let go.
        offset = daemon.log_offset()
        daemon.write_config(config(two))
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(r"running: .*two\.db", 15, since=offset)
        if not refused(wd, "moved", two, daemon):
            problems.append("after the move, a second daemon was not refused on two.db")
        other = harness.Daemon(wd, config(one), name="on_one")
        other.start()
        try:
            other.wait_log(r"running: ", 15)
        except AssertionError:
            problems.append("one.db was still locked after the daemon moved to two.db")

        # A reload to a store that another daemon holds: refused, two.db is kept.
        offset = daemon.log_offset()
        daemon.write_config(config(one))
        daemon.signal(signal.SIGHUP)
        try:
            daemon.wait_log(r"in use by modbridge \(pid %d\)" % other.pid, 15, since=offset)
            daemon.wait_log(r"running: .*two\.db", 15, since=offset)
        except AssertionError as exc:
            problems.append(f"a reload to a store in use: {exc}")
        if not refused(wd, "kept", two, daemon):
            problems.append("after the refused reload, two.db was not locked any more")
        other.stop()

        if not daemon.running:
            problems.append("the daemon stopped")
        daemon.stop()
        assert not problems, "\n".join(problems)
    print("store lock across reloads: OK")


if __name__ == "__main__":
    main()
