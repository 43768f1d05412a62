#!/usr/bin/python3
"""Scenario: the systemd notification protocol, for real, and a watchdog that a stuck thread
silences.

The test plays systemd: it binds a datagram socket, passes it as NOTIFY_SOCKET with
WATCHDOG_USEC=1 s, and reads what the daemon sends. It expects READY=1 once the store is open
and the buses are up (with a STATUS= line naming the backlog and the uplink), WATCHDOG=1
about every half second, RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on
SIGTERM.

Then it freezes one worker thread at a time, from outside and without any hook in the
daemon: ptrace(PTRACE_SEIZE + PTRACE_INTERRUPT) on that one thread (found by its name in
/proc/PID/task/*/comm) stops it while the rest of the process runs. For each of the store
writer, the forwarder, the serial bus worker and a Modbus TCP worker, the pings must stop
(and the log name that thread), and come back once the thread is let go (PTRACE_DETACH).
Needs ptrace of a child (root, or a yama ptrace_scope that allows it); exits 77 otherwise.
"""
import ctypes
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for a thread, not only a child process

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def ptrace(request, tid):
    if _libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


class Manager:
    """The service manager's end: every datagram, with its arrival time."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.records = []  # (monotonic time, [lines])
        self.cond = threading.Condition()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            with self.cond:
                self.records.append((time.monotonic(), data.decode().split("\n")))
                self.cond.notify_all()

    def close(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()

    def lines(self, since=0.0):
        with self.cond:
            return [(t, line) for t, lines in self.records if t >= since for line in lines]

    def wait_for(self, pred, timeout, what, since=0.0):
        return harness.wait_until(
            lambda: next((x for x in self.lines(since) if pred(x[1])), None), timeout,
            lambda: f"{what}; got {[l for _, l in self.lines(since)][-12:]}")

    def pings(self, since, until=None):
        return [t for t, line in self.lines(since)
                if line == "WATCHDOG=1" and (until is None or t <= until)]


def thread_ids(pid, name):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8") as fh:
                if fh.read().strip() == name:
                    out.append(int(tid))
        except OSError:
            pass
    return sorted(out)


def freeze_and_release(daemon, mgr, name, part):
    """Freezes the first thread called name; the pings must stop, then resume."""
    tids = harness.wait_until(lambda: thread_ids(daemon.pid, name), 10,
                              f"a thread named {name} in the daemon")
    tid = tids[0]
    offset = daemon.log_offset()
    ptrace(PTRACE_SEIZE, tid)
    try:
        ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)  # it is stopped now
        frozen_at = time.monotonic()
        # The stall limit is 2 x the longest Modbus time-out (300 ms) + 4 s = 4.6 s; then the
        # last ping is at most one tick (0.5 s) later. Wait for 2 s without a ping.
        def silent():
            last = max([frozen_at] + mgr.pings(frozen_at))
            return time.monotonic() - last >= 2.0 and last
        last = harness.wait_until(silent, 15, f"the pings to stop with {name} frozen")
        stopped_after = last - frozen_at
        daemon.wait_log(rf"watchdog: {part} has shown no sign of life", 5, since=offset)
        print(f"{name} (tid {tid}) frozen: last ping {stopped_after:.1f} s later, "
              f"{len(mgr.pings(frozen_at))} ping(s) after the freeze")
        assert stopped_after < 6.5, f"pings went on {stopped_after:.1f} s after the freeze"
    finally:
        ptrace(PTRACE_DETACH, tid)
    released_at = time.monotonic()
    mgr.wait_for(lambda l: l == "WATCHDOG=1", 5, f"pings again after releasing {name}",
                 since=released_at)
    daemon.wait_log(rf"watchdog: {part} shows signs of life again", 5, since=offset)
    print(f"{name} released: pinging again after "
          f"{mgr.pings(released_at)[0] - released_at:.1f} s")


def ptrace_allowed():
    """Whether this process may ptrace a child of its own (probed on a sleeping child)."""
    pid = os.fork()
    if pid == 0:
        time.sleep(5)
        os._exit(0)  # pylint: disable=protected-access
    try:
        ptrace(PTRACE_SEIZE, pid)  # the child is killed below, traced or not
        return True
    except OSError as exc:
        print(f"ptrace is not allowed here ({exc}): skipped")
        return False
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def main():
    if not ptrace_allowed():
        sys.exit(77)
    with harness.Workdir("notify") as wd:
        pki = harness.make_pki(wd.path)
        broker = harness.Broker(wd, pki)
        broker.start()
        pty = harness.PtyPair(wd)
        pty.start()
        tcp_port = harness.free_port()
        sim = harness.ModbusSim(wd, {"servers": [
            {"rtu": pty.b, "baudrate": 9600, "units": {"1": {"holding": {"identity": 2000}}}},
            {"tcp": "127.0.0.1:%d" % tcp_port, "units": {"1": {"holding": {"identity": 2000}}}},
        ]})
        sim.start()
        config = f"""\
gateway: {{ imei: "IMEI-NOTIFY" }}
serial:
  - {{ name: com2, device: {pty.a}, baudrate: 9600, timeout_ms: 300 }}
modbus:
  devices:
    - {{ id: rtu1, address: 1, start: 0, count: 2, period: 1s }}
    - {{ id: tcp1, address: "127.0.0.1:{tcp_port}", start: 0, count: 2, period: 1s, timeout_ms: 300 }}
logger:
  store: {wd.path}/store.db
mqtt:
  broker: tcp://127.0.0.1:{broker.port_plain}
  qos: 1
"""
        mgr = Manager(wd.path / "notify.sock")
        daemon = harness.Daemon(wd, config)
        try:
            started = time.monotonic()
            daemon.start(env={"NOTIFY_SOCKET": mgr.path, "WATCHDOG_USEC": "1000000"})
            mgr.wait_for(lambda l: l == "READY=1", 20, "READY=1")
            daemon.wait_log(r"running: ", 5)
            mgr.wait_for(lambda l: l.startswith("STATUS=") and "uplink mqtt connected" in l, 10,
                         "a STATUS= line with the uplink connected")
            status = [l for _, l in mgr.lines() if l.startswith("STATUS=")]
            print(f"status lines: {status}")
            assert any("backlog" in l and "2 device(s)" in l for l in status), status

            # Pings about every 0.5 s (half of WATCHDOG_USEC).
            t0 = time.monotonic()
            time.sleep(3)
            n = len(mgr.pings(t0, t0 + 3))
            print(f"{n} WATCHDOG=1 in 3 s (READY after {mgr.lines()[0][0] - started:.1f} s)")
            assert 4 <= n <= 8, f"{n} pings in 3 s with WATCHDOG_USEC=1 s"

            for name, part in (("mb-writer", "the store writer"),
                               ("mb-forward", "the forwarder"),
                               ("mb-rtu", "a Modbus worker"),
                               ("mb-tcp", "a Modbus worker")):
                freeze_and_release(daemon, mgr, name, part)

            # A reload: RELOADING=1, then READY=1 once started again.
            t_hup = time.monotonic()
            daemon.signal(signal.SIGHUP)
            reloading = mgr.wait_for(lambda l: l == "RELOADING=1", 10, "RELOADING=1",
                                     since=t_hup)
            mgr.wait_for(lambda l: l == "READY=1", 20, "READY=1 after the reload",
                         since=reloading[0])
            assert any(l.startswith("MONOTONIC_USEC=") for _, l in mgr.lines(t_hup))

            t_term = time.monotonic()
            daemon.signal(signal.SIGTERM)
            mgr.wait_for(lambda l: l == "STOPPING=1", 10, "STOPPING=1", since=t_term)
            rc = daemon.stop()
            assert rc == 0, f"exit status {rc}"
            assert not [l for _, l in mgr.lines(t_term) if l == "READY=1"]
        finally:
            daemon.stop()
            mgr.close()
    print("notify and watchdog: OK")


if __name__ == "__main__":
    main()
